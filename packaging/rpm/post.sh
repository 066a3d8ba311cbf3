# pam_authy %post: creates the module's state directory and, where SELinux is enabled,
# installs the policy module (so sshd may reach the API) and labels the module's files.
# It never edits a PAM stack.
install -d -m 0700 -o root -g root /var/lib/pam_authy
if command -v selinuxenabled >/dev/null 2>&1 && selinuxenabled; then
    if semodule -i /usr/share/selinux/packages/pam_authy.pp; then
        restorecon -R /etc/pam_authy /var/lib/pam_authy || true
    else
        echo "pam_authy: WARNING: semodule could not install the SELinux policy module;" >&2
        echo "pam_authy: confined sshd and sudo cannot reach the Authy API until it is installed." >&2
    fi
fi
exit 0
