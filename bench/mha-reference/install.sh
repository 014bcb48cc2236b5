#!/bin/sh
# MHA 0.58 from Debian's packages, unpacked into a scratch directory for `npm run bench:vs-mha` only.
# Never installed system-wide, never called by mha itself. Run as root (apt-get); idempotent.
#   bench/mha-reference/install.sh [DIR]     (default /var/tmp/mha-0.58-reference)
# Leaves:
#   DIR/stock/usr/{bin,share/perl5}    MHA 0.58-1.1 with only the compatibility patches MariaDB 10.11 needs
#   DIR/patched/usr/{bin,share/perl5}  the same, plus Parallel::ForkManager's 1 s child polling turned off
#   DIR/wrap/scp                       scp in its original protocol (see below)
#   DIR/remote-env                     the forced command that gives MHA's SSH sessions the node tools
set -eu
DIR=${1:-/var/tmp/mha-0.58-reference}
VERSION=0.58-1.1
[ -f "$DIR/.ready-$VERSION" ] && exit 0
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root (it uses apt-get)" >&2; exit 1; }

rm -rf "$DIR"
mkdir -p "$DIR/debs"
cd "$DIR/debs"
if ! apt-get download "mha4mysql-manager=$VERSION" "mha4mysql-node=$VERSION" >/dev/null 2>&1; then
  apt-get update >/dev/null
  apt-get download "mha4mysql-manager=$VERSION" "mha4mysql-node=$VERSION" >/dev/null
fi

# The Perl modules both packages declare (dpkg-deb -I: Depends), from Debian.
deps=$(for deb in ./*.deb; do dpkg-deb -f "$deb" Depends; done | tr ',' '\n' | sed 's/^ *//; s/[ (:].*//' | grep -E '^lib.*-perl$' | sort -u)
missing=""
for pkg in $deps; do dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"; done
if [ -n "$missing" ]; then
  apt-get update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >/dev/null
fi

mkdir -p "$DIR/stock"
for deb in ./*.deb; do dpkg -x "$deb" "$DIR/stock"; done
lib="$DIR/stock/usr/share/perl5/MHA"
bin="$DIR/stock/usr/bin"

# Patch 1: the version parsers sprintf every digit group of "10.11.x-MariaDB-0+deb12u1-log" into a
# three-field format, which dies under FATAL warnings ("Redundant argument in sprintf"): keep the first three.
perl -0pi -e 's/sprintf\( \x27%03d%03d%03d\x27, \$str =~ m\/\(\\d\+\)\/g \)/sprintf( \x27%03d%03d%03d\x27, ( \$str =~ m\/(\\d+)\/g )[0..2] )/; s/sprintf\( \x27%03d%03d\x27, \$str =~ m\/\(\\d\+\)\/g \)/sprintf( \x27%03d%03d\x27, ( \$str =~ m\/(\\d+)\/g )[0..1] )/' "$lib/NodeUtil.pm"
grep -q '\[0\.\.2\]' "$lib/NodeUtil.pm" && grep -q '\[0\.\.1\]' "$lib/NodeUtil.pm" || { echo "install.sh: version-parser patch did not apply" >&2; exit 1; }

# Patch 2: MariaDB has no @@global.super_read_only; reading it raises an error. Treat it as off there.
perl -0pi -e 's/(SELECT \\\@\\\@global\.super_read_only as Value"\);\n\s*)\$sth->execute\(\);/$1return (0, 0) unless eval { \$sth->execute(); 1 };  # MariaDB: no super_read_only/' "$lib/SlaveUtil.pm"
grep -q 'MariaDB: no super_read_only' "$lib/SlaveUtil.pm" || { echo "install.sh: super_read_only patch did not apply" >&2; exit 1; }

# The shebangs name /usr/bin/perl; the scratch modules come first through PERL5LIB, set by the callers.

# The "patched" variant: the same, with Parallel::ForkManager's pseudo-blocking wait (a 1 s sleep between
# polls of its children, Debian 12's default) replaced by a real blocking waitpid. A local patch, not upstream.
cp -a "$DIR/stock" "$DIR/patched"
for pm in "$DIR/patched/usr/share/perl5/MHA/"*.pm; do
  perl -pi -e 's/^(\s*my \$(\w+)\s*=\s*new Parallel::ForkManager\(.*\);)\s*$/$1 \$$2->set_waitpid_blocking_sleep(0);\n/' "$pm"
done
[ "$(grep -c 'set_waitpid_blocking_sleep(0)' "$DIR/patched/usr/share/perl5/MHA/"*.pm | awk -F: '{s+=$2} END {print s}')" -ge 8 ] || { echo "install.sh: ForkManager patch did not apply" >&2; exit 1; }

# OpenSSH 9's scp speaks SFTP, and the sandbox's sshd declares no sftp subsystem: MHA's scp calls (on the
# manager and, for relay-log diffs, from one DB host to another) use the original protocol (-O).
mkdir -p "$DIR/wrap"
cat >"$DIR/wrap/scp" <<'EOF'
#!/bin/sh
exec /usr/bin/scp -O "$@"
EOF
chmod 755 "$DIR/wrap/scp"

# MHA runs its node tools by name over SSH. The bench's sandboxes give MHA's key this forced command
# (authorized_keys command="..."), so that those sessions find the scratch tools and modules.
cat >"$DIR/remote-env" <<EOF
#!/bin/sh
PATH="$DIR/wrap:$bin:\$PATH"
PERL5LIB="$DIR/stock/usr/share/perl5"
export PATH PERL5LIB
[ -n "\${SSH_ORIGINAL_COMMAND:-}" ] || exec /bin/sh
exec /bin/sh -c "\$SSH_ORIGINAL_COMMAND"
EOF
chmod 755 "$DIR/remote-env"

PERL5LIB="$DIR/stock/usr/share/perl5" perl -c "$bin/masterha_manager" >/dev/null 2>&1 || { echo "install.sh: masterha_manager does not compile; see: PERL5LIB=$DIR/stock/usr/share/perl5 perl -c $bin/masterha_manager" >&2; exit 1; }
touch "$DIR/.ready-$VERSION"
echo "MHA $VERSION unpacked and patched in $DIR"
