# pam_authy %postun: on erase (not upgrade), removes the state directory and the config
# directory if nothing is left in it (rpm keeps a modified config as .rpmsave).
if [ "$1" = 0 ]; then
    rm -rf /var/lib/pam_authy
    rmdir /etc/pam_authy 2>/dev/null || true
fi
exit 0
