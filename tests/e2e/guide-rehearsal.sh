#!/bin/sh
# Runs the commands of docs/admin-guide.md as written, as root, on a stand-in for an
# installed system: private mount and network namespaces over copies of /etc, /root,
# /home, /var/lib, /var/log, /run and the module directory, with the built module and CLI
# put where the package installs them and the sandbox standing in for api.authy.com.
# Nothing on the host changes. Usage (root):  sh tests/e2e/guide-rehearsal.sh
# Needs a built workspace (cargo build --workspace); CARGO_TARGET_DIR is honoured.
# Each guide command is echoed with "+ " (set -x); the rest is the stand-in's setup.
set -eu

if [ "${1:-}" != inner ]; then
    repo=$(cd "$(dirname "$0")/../.." && pwd)
    target=${CARGO_TARGET_DIR:-$repo/target}/debug
    for f in "$target/pam-authy" "$target/libpam_authy.so"; do
        [ -f "$f" ] || { echo "missing $f: run cargo build --workspace" >&2; exit 1; }
    done
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    unshare -m -n --propagation private sh "$0" inner "$repo" "$target" "$scratch"
    exit
fi

repo=$2 target=$3 T=$4
step() { set +x; printf '\n=== %s\n' "$*"; }

# ---- The stand-in system (not guide commands).
ip link set lo up
cp -a /etc "$T/etc" && mount --bind "$T/etc" /etc
cp -a /var/lib/pam "$T/var-lib-pam" && cp /var/lib/dpkg/info/libpam-runtime.templates "$T/"
for d in /root /home /run /var/log /var/mail /usr/local/bin /usr/share/doc /var/lib; do mount -t tmpfs -o mode=0755 tmpfs "$d"; done
chmod 700 /root
mkdir -p /run/sshd /var/lib/dpkg/info /var/lib/pam_authy /var/lib/sudo && chmod 700 /var/lib/pam_authy
cp -a "$T/var-lib-pam" /var/lib/pam && cp "$T/libpam-runtime.templates" /var/lib/dpkg/info/
cp -a /var/cache/debconf "$T/debconf" && mount --bind "$T/debconf" /var/cache/debconf
sec=/usr/lib/x86_64-linux-gnu/security
cp -a "$sec" "$T/security" && install -m 644 "$target/libpam_authy.so" "$T/security/pam_authy.so" && mount --bind "$T/security" "$sec"
cp -a /usr/share/pam-configs "$T/pam-configs" && install -m 644 "$repo/packaging/debian/pam-configs-pam_authy" "$T/pam-configs/pam_authy"
mount --bind "$T/pam-configs" /usr/share/pam-configs
install -m 755 "$target/pam-authy" /usr/local/bin/pam-authy
mkdir -p /usr/share/doc/pam-authy/examples/pam.d && cp "$repo"/pam.d-examples/* /usr/share/doc/pam-authy/examples/pam.d/
install -d -m 755 /etc/pam_authy && install -m 600 "$repo/packaging/pam_authy.toml" /etc/pam_authy/pam_authy.toml

pam-authy sandbox --listen 127.0.0.1:8443 --control 127.0.0.1:8444 --tls-dir "$T/tls" > "$T/sandbox.out" &
sandbox_pid=$!
trap 'kill $sandbox_pid; [ -f /run/sshd.pid ] && kill $(cat /run/sshd.pid); true' EXIT
until grep -q '^ready' "$T/sandbox.out" 2>/dev/null; do sleep 0.1; done
api_key=$(sed -n 's/^api_key=//p' "$T/sandbox.out")
control_token=$(sed -n 's/^control_token=//p' "$T/sandbox.out")
# Where a real site fills in its API key, the stand-in also points the module at the sandbox.
sed -i "s|^\[api\]|[api]\nurl = \"https://127.0.0.1:8443\"\nca_file = \"$T/tls/ca.pem\"\napi_key = \"$api_key\"|" /etc/pam_authy/pam_authy.toml
useradd -m -s /bin/sh alice && echo 'alice:Alice-pw-1' | chpasswd && usermod -aG sudo alice
mkdir -m 700 /root/.ssh && ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/id_ed25519
install -d -m 700 -o alice -g alice /home/alice/.ssh
install -m 600 -o alice -g alice /root/.ssh/id_ed25519.pub /home/alice/.ssh/authorized_keys
/usr/sbin/sshd    # the host's sshd, running before the change (Debian's own config)
# alice's Authy code at now + $1 seconds. The sandbox accepts each 30 s step once and the
# steps next to the current one too, so successive logins use -30, 0, 30.
token() {
    id=$(sed -n '/^alice = /s/[^0-9]*\([0-9][0-9]*\).*/\1/p' /etc/pam_authy/pam_authy.toml)
    curl -s -H "Authorization: Bearer $control_token" "http://127.0.0.1:8444/users/$id/token?at=$(($(date +%s) + $1))" | sed 's/.*"token":"\([0-9]*\)".*/\1/'
}
# An interactive ssh login: answers the Authy prompt with $1, then runs `echo LOGGED_IN`.
ssh_login() {
    expect -c "
        set timeout 20
        spawn ssh -o StrictHostKeyChecking=accept-new alice@127.0.0.1 {echo LOGGED_IN}
        expect {
            {Authy token} { send -- {$1}; send \"\\r\"; exp_continue }
            {password:} { send \"\\r\"; exp_continue }
            timeout { exit 124 }
            eof
        }
        lassign [wait] pid spawnid os_error value
        exit \$value"
}

step "2. Configure and check the module first"
set -x
pam-authy check
pam-authy enroll alice --email alice@example.org --phone 555-123-4567 --country-code 1
pam-authy offline-enroll alice > /dev/null
set +x

step "3. Roll out: save, try in a copy, install, reload"
set -x
cp -a /etc/pam.d /root/pam.d.before-authy
cp -a /etc/ssh/sshd_config.d /root/sshd_config.d.before-authy
mkdir /root/pam.d.authy
cp -a /etc/pam.d/. /root/pam.d.authy/
cp /usr/share/doc/pam-authy/examples/pam.d/sshd /root/pam.d.authy/sshd
set +x
code=$(token -30)   # what alice reads off her phone, typed at the prompt below
set -x
echo "$code" | pam-authy test alice --confdir /root/pam.d.authy --service sshd --rhost 203.0.113.7 --tty ssh
set +x
echo 1234567 | pam-authy test alice --confdir /root/pam.d.authy --service sshd --rhost 203.0.113.7 --tty ssh \
    && { echo "a wrong token must fail"; exit 1; }
set -x
install -m 644 /usr/share/doc/pam-authy/examples/pam.d/sshd /etc/pam.d/sshd
install -m 644 /usr/share/doc/pam-authy/examples/pam.d/sshd_config-publickey.conf /etc/ssh/sshd_config.d/pam_authy.conf
sshd -t
kill -HUP $(cat /run/sshd.pid)
set +x
sleep 0.5

step "3.5 A new login: right token in, wrong token out"
ssh_login "$(token 0)" | tee "$T/ssh.out"
grep -q LOGGED_IN "$T/ssh.out"
if ssh_login 1234567 > "$T/ssh-wrong.out" 2>&1; then echo "a wrong token must fail"; exit 1; fi
cat "$T/ssh-wrong.out"

step "4. sshd -T"
set -x
sshd -T -C user=alice,host=server,addr=203.0.113.7 | grep -Ei '^(usepam|kbdinteractiveauthentication|authenticationmethods|passwordauthentication)'
set +x

step "3.6 Going back"
set -x
cp /root/pam.d.before-authy/sshd /etc/pam.d/sshd
rm /etc/ssh/sshd_config.d/pam_authy.conf
kill -HUP $(cat /run/sshd.pid)
set +x
sleep 0.5
ssh -o BatchMode=yes alice@127.0.0.1 'echo KEY_ALONE_AGAIN' | grep KEY_ALONE_AGAIN

step "5. sudo and sudo -i"
set -x
install -m 644 /usr/share/doc/pam-authy/examples/pam.d/sudo /etc/pam.d/sudo
sed -i '/^@include common-auth/a auth    [success=1 default=ignore]    pam_succeed_if.so quiet_fail user ingroup pam_authy-exempt\nauth       required   pam_authy.so' /etc/pam.d/sudo-i
set +x
grep -n pam_authy /etc/pam.d/sudo-i
printf 'Alice-pw-1\n%s\n' "$(token 30)" | pam-authy test alice --service sudo-i
sleep 30   # a step not used yet
expect -c "
    set timeout 20
    spawn setpriv --reuid=alice --regid=alice --init-groups --reset-env sudo -k sh -c {echo SUDO_\$((6*7))}
    expect {
        {password for} { send {Alice-pw-1}; send \"\\r\"; exp_continue }
        {Authy token} { send {$(token 30)}; send \"\\r\"; exp_continue }
        timeout { exit 124 }
        eof
    }" | tee "$T/sudo.out"
grep -q SUDO_42 "$T/sudo.out"

step "8. pam-auth-update"
set -x
pam-auth-update --enable pam_authy
set +x
grep -n pam_authy /etc/pam.d/common-auth
set -x
pam-auth-update --disable pam_authy
set +x
! grep -n pam_authy /etc/pam.d/common-auth

step "9. status"
set -x
pam-authy status alice
set +x
echo
echo "REHEARSAL PASSED"
