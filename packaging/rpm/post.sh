# pam_authy %post: creates the module's state directory. It never edits a PAM stack.
install -d -m 0700 -o root -g root /var/lib/pam_authy
exit 0
