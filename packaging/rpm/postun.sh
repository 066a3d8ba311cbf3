# pam_authy %postun: on erase (not upgrade), removes the SELinux policy module if the store
# holds it, the state directory, and the config directory if nothing is left in it (rpm
# keeps a modified config as .rpmsave).
if [ "$1" = 0 ]; then
    if command -v semodule >/dev/null 2>&1 && semodule -l 2>/dev/null | grep -q '^pam_authy\([[:space:]]\|$\)'; then
        semodule -r pam_authy || echo "pam_authy: WARNING: semodule -r pam_authy failed" >&2
    fi
    rm -rf /var/lib/pam_authy
    rmdir /etc/pam_authy 2>/dev/null || true
fi
exit 0
