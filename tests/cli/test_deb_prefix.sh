#!/usr/bin/env bash
# scripts/deb_prefix.py unpack on packages made here with dpkg-deb --build (no network): files
# land under the prefix, an absolute symbolic link is pointed back into it, the links of a
# postinst's update-alternatives call are made there (only where their target was unpacked),
# prefix=/usr in a wrapper script and a .pc file becomes the prefix, env.sh puts the prefix first,
# and a truncated .deb or a folder without any is refused naming the file.
#   test_deb_prefix.sh SRC WORK
SRC=$1 WORK=$2
# shellcheck source=tests/cli/train_test_lib.sh
source "$SRC/tests/cli/train_test_lib.sh"
rm -rf "$WORK" && mkdir -p "$WORK/debs"
command -v dpkg-deb >/dev/null || { echo "SKIP: no dpkg-deb to build test packages"; exit 77; }
unpack() { python3 "$SRC/scripts/deb_prefix.py" unpack "$@"; }

make_package() {  # make_package NAME: a package tree under WORK/NAME, built into WORK/debs
  mkdir -p "$WORK/$1/DEBIAN"
  printf 'Package: %s\nVersion: 1.0\nArchitecture: all\nMaintainer: test <t@t>\nDescription: t\n' \
    "$1" >"$WORK/$1/DEBIAN/control"
  dpkg-deb --build --root-owner-group "$WORK/$1" "$WORK/debs/$1.deb" >/dev/null
}
tree="$WORK/libdemo-dev"
mkdir -p "$tree/usr/lib/demo" "$tree/usr/bin" "$tree/usr/lib/pkgconfig" "$tree/usr/include"
echo "int demo(void);" >"$tree/usr/include/demo.h"
echo "library" >"$tree/usr/lib/demo/libdemo.so.1"
ln -s /usr/lib/demo/libdemo.so.1 "$tree/usr/lib/libdemo.so.1"
printf '#!/bin/sh\nprefix="/usr"\nlibdir="${prefix}/lib"\necho "$libdir"\n' >"$tree/usr/bin/democc"
chmod 755 "$tree/usr/bin/democc"
printf 'prefix=/usr\nlibdir=${prefix}/lib\nName: demo\nDescription: d\nVersion: 1\nLibs: -L${libdir} -ldemo\n' \
  >"$tree/usr/lib/pkgconfig/demo.pc"
mkdir -p "$tree/DEBIAN"
cat >"$tree/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
update-alternatives \
	--install /usr/lib/libdemo.so libdemo.so /usr/lib/demo/libdemo.so.1 50 \
	--slave /usr/include/demo-alt.h demo-alt.h /usr/include/demo.h \
	--slave /usr/bin/absent absent /usr/bin/not-in-any-package
SH
chmod 755 "$tree/DEBIAN/postinst"
make_package libdemo-dev

out=$(unpack "$WORK/debs" "$WORK/prefix" 2>&1) || fail "unpack failed: $out"
p="$WORK/prefix"
[[ -f "$p/usr/include/demo.h" ]] && pass "files land under the prefix" || fail "no $p/usr/include/demo.h"
target=$(readlink "$p/usr/lib/libdemo.so.1")
[[ "$target" != /* && "$(readlink -f "$p/usr/lib/libdemo.so.1")" == "$(readlink -f "$p/usr/lib/demo/libdemo.so.1")" ]] &&
  pass "the absolute link now points inside the prefix ($target)" || fail "libdemo.so.1 -> $target"
[[ "$(cat "$p/usr/lib/libdemo.so" 2>/dev/null)" == library && -f "$p/usr/include/demo-alt.h" ]] &&
  pass "the postinst's alternative and its slave are linked in the prefix" ||
  fail "alternatives not linked: $(ls -l "$p/usr/lib" "$p/usr/include")"
[[ ! -e "$p/usr/bin/absent" && ! -L "$p/usr/bin/absent" ]] && pass "no link to a target never unpacked" ||
  fail "an alternative to a missing target was linked"
[[ "$("$p/usr/bin/democc")" == "$(cd "$p" && pwd)/usr/lib" ]] && pass "the wrapper's prefix=/usr is the prefix's" ||
  fail "democc prints $("$p/usr/bin/democc")"
grep -qx "prefix=$(cd "$p" && pwd)/usr" "$p/usr/lib/pkgconfig/demo.pc" && pass "the .pc file's prefix is the prefix's" ||
  fail "demo.pc: $(head -1 "$p/usr/lib/pkgconfig/demo.pc")"
(
  # shellcheck disable=SC1091
  source "$p/env.sh"
  [[ "$PATH" == "$(cd "$p" && pwd)/usr/bin:"* && "$CMAKE_PREFIX_PATH" == "$(cd "$p" && pwd)/usr"* &&
    "$OPAL_PREFIX" == "$(cd "$p" && pwd)/usr" ]]
) && pass "env.sh puts the prefix first on PATH and CMAKE_PREFIX_PATH and sets OPAL_PREFIX" ||
  fail "env.sh: $(cat "$p/env.sh")"
again=$(unpack "$WORK/debs" "$WORK/prefix" 2>&1) && [[ "$("$p/usr/bin/democc")" == "$(cd "$p" && pwd)/usr/lib" ]] &&
  pass "unpacking again into the same prefix works" || fail "second unpack: $again"

# A truncated package and an empty folder: refused, naming what is wrong.
mkdir -p "$WORK/broken" "$WORK/empty"
head -c 700 "$WORK/debs/libdemo-dev.deb" >"$WORK/broken/libdemo-dev.deb"
msg=$(unpack "$WORK/broken" "$WORK/prefix2" 2>&1)
status=$?
((status != 0)) && [[ "$msg" == *"broken/libdemo-dev.deb is damaged"* ]] &&
  pass "a truncated .deb is refused: $msg" || fail "truncated .deb: exit $status, '$msg'"
msg=$(unpack "$WORK/empty" "$WORK/prefix3" 2>&1)
status=$?
((status != 0)) && [[ "$msg" == *"no .deb files in $WORK/empty"* ]] && pass "an empty folder is refused: $msg" ||
  fail "empty folder: exit $status, '$msg'"

# setup.sh's own refusals, before anything is fetched.
msg=$(bash "$SRC/scripts/setup.sh" --debs "$WORK/debs" 2>&1)
status=$?
((status != 0)) && [[ "$msg" == *"--debs DEBDIR goes with --prefix DIR"* ]] && pass "--debs without --prefix refused" ||
  fail "--debs alone: exit $status, '$msg'"
msg=$(bash "$SRC/scripts/setup.sh" --prefx x 2>&1)
status=$?
((status == 2)) && [[ "$msg" == *"unknown option '--prefx'"* ]] && pass "a misspelt option is refused by name" ||
  fail "--prefx: exit $status, '$msg'"
finish
