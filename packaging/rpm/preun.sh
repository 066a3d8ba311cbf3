# pam_authy %preun: on erase (not upgrade), warns about PAM stacks that still load
# pam_authy.so, because libpam fails every "required" line whose module is missing.
if [ "$1" = 0 ]; then
    stacks=$(grep -l 'pam_authy\.so' /etc/pam.d/* 2>/dev/null || true)
    if [ -n "$stacks" ]; then
        echo "pam_authy: WARNING: these PAM stacks still use pam_authy.so, which is being removed:" >&2
        for stack in $stacks; do
            echo "    $stack" >&2
        done
        echo "pam_authy: logins through them fail until the pam_authy.so lines are removed." >&2
    fi
fi
exit 0
