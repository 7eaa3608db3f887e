#!/usr/bin/env python3
"""Debian packages into a folder, without root: the helper behind `scripts/setup.sh --prefix`.

  deb_prefix.py closure PKG...          the packages PKG... need, one per line, leaving out what
                                        every machine that builds C++ already has (the C library,
                                        the compilers, dpkg, perl, python)
  deb_prefix.py unpack DEBDIR PREFIX    every DEBDIR/*.deb into PREFIX as dpkg-deb -x would, absolute
                                        symlinks pointed back into PREFIX, the links Debian's
                                        maintainer scripts would make with update-alternatives,
                                        and PREFIX/env.sh, which puts PREFIX first on the paths

Only the standard library: it runs before anything is installed.
"""
import io
import lzma
import os
import re
import shlex
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

# What the host provides: its C library and toolchain (a compiler unpacked into a folder does not
# find its own parts), and Debian's package and script machinery, which nothing we link needs.
HOST_PROVIDED = re.compile(
    r"^(libc6|libc6-dev|libc-dev-bin|libc-bin|linux-libc-dev|libcrypt1|libcrypt-dev|"
    r"gcc(-\d+)?(-base)?|g\+\+(-\d+)?|cpp(-\d+)?|gfortran(-\d+)?|flang(-\d+)?|libflang-\d+-dev|"
    r"libclang-cpp\d+|llvm.*|libllvm\d+|binutils.*|libbinutils|libctf.*|libgcc-s1|libgcc-\d+-dev|"
    r"libstdc\+\+6|libstdc\+\+-\d+-dev|libgfortran-\d+-dev|libasan\d|liblsan\d|libtsan\d|libubsan\d|"
    r"libhwasan\d|libitm\d|libatomic1|libcc1-0|libisl\d+|libmpc\d|libmpfr\d|libgmp\d+|"
    r"dpkg|dpkg-dev|debconf|cdebconf|debianutils|adduser|install-info|perl.*|libperl.*|"
    r"python3.*|libpython3.*|autoconf|automake|autotools-dev|libtool|m4|make|cmake.*|"
    r"sensible-utils|lsb-base|sysvinit-utils|init-system-helpers|passwd|login|base-files|"
    r"libaudit.*|libpam.*|libselinux1|libsemanage.*|libsepol\d|libcap-ng0|libdebian-installer\d|"
    r"libjs-.*|catch2)$"
)
DEPENDS = re.compile(r"^\s*(\|?)(?:Pre)?Depends: (<?)([^>\s]+)>?$")
PROVIDER = re.compile(r"^\s{4}(\S+)$")


def apt_depends(packages):
    """{package: [[alternative, ...], ...]} from one `apt-cache depends` call."""
    out = subprocess.run(
        ["apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts",
         "--no-breaks", "--no-replaces", "--no-enhances", *packages],
        check=True, capture_output=True, text=True).stdout
    groups, current, group, pending_or, virtual = {}, None, [], False, None
    for line in out.splitlines():
        if not line.startswith(" "):
            if current is not None and group:
                groups[current].append(group)
            current = line.strip()
            groups[current], group, pending_or, virtual = [], [], False, None
            continue
        dep = DEPENDS.match(line)
        if dep:
            if not pending_or and group:
                groups[current].append(group)
                group = []
            pending_or, is_virtual, name = dep.group(1) == "|", dep.group(2) == "<", dep.group(3)
            virtual = name if is_virtual else None
            if not is_virtual:
                group.append(name)
            continue
        provider = PROVIDER.match(line)
        if provider and virtual:
            group.append(provider.group(1))
        elif line.strip() and not line.lstrip().startswith(("Depends", "PreDepends")):
            virtual = None  # another kind of relation: not followed
    if current is not None and group:
        groups[current].append(group)
    return groups


def closure(roots):
    """The packages roots need, first alternative of each dependency, host's own left out."""
    chosen, queue = [], [p for p in roots if not HOST_PROVIDED.match(p)]
    seen = set(queue)
    while queue:
        level, queue = queue, []
        chosen.extend(level)
        for groups in apt_depends(level).values():
            for group in groups:
                if any(HOST_PROVIDED.match(p) or p in seen for p in group):
                    continue
                seen.add(group[0])
                queue.append(group[0])
    return sorted(set(chosen))


def unpack(debdir, prefix):
    debs = sorted(Path(debdir).glob("*.deb"))
    if not debs:
        raise SystemExit(f"deb_prefix: no .deb files in {debdir}")
    prefix.mkdir(parents=True, exist_ok=True)
    alternatives = []
    for deb in debs:
        alternatives += extract_deb(deb, prefix)
    repoint_absolute_links(prefix)
    relocated = relocate_prefix_lines(prefix)
    made = make_alternative_links(prefix, alternatives)
    write_env(prefix)
    print(f"deb_prefix: {len(debs)} packages unpacked into {prefix}, {made} alternatives linked, "
          f"{relocated} scripts and .pc files moved to it")


def extract_deb(deb, prefix):
    """Unpacks one .deb's files into prefix; returns its postinst's alternatives."""
    members = ar_members(deb)
    data = next((m for m in members if m.startswith("data.tar")), None)
    control = next((m for m in members if m.startswith("control.tar")), None)
    if data is None or control is None:
        raise SystemExit(f"deb_prefix: {deb} is not a Debian package (members: {list(members)})")
    try:
        files = open_tar(deb, data, members[data])
        files.extractall(prefix, members=checked_members(deb, files))
        scripts = open_tar(deb, control, members[control])
        postinst = next((m for m in scripts.getmembers() if m.name.lstrip("./") == "postinst"),
                        None)
        script = scripts.extractfile(postinst).read() if postinst else b""
    except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error) as error:
        raise SystemExit(f"deb_prefix: {deb} is damaged ({error}): fetch it again")
    return postinst_alternatives(script.decode(errors="replace"))


def ar_members(deb):
    """{name: bytes} of an ar archive, the container of a .deb (no dpkg needed)."""
    raw = Path(deb).read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise SystemExit(f"deb_prefix: {deb} is not a Debian package (no ar header)")
    members, at = {}, 8
    while at + 60 <= len(raw):
        name, size = raw[at:at + 16].decode(errors="replace").strip().rstrip("/"), raw[at + 48:at + 58]
        if not size.strip().isdigit() or at + 60 + int(size) > len(raw):
            raise SystemExit(f"deb_prefix: {deb} is damaged (member {name!r} cut short or its "
                             "header unreadable): fetch it again")
        size = int(size)
        members[name] = raw[at + 60:at + 60 + size]
        at += 60 + size + (size % 2)  # members are padded to an even offset
    return members


def open_tar(deb, name, payload):
    if name.endswith(".zst"):
        try:  # Python 3.14 reads zstd; Ubuntu's packages use it, Debian's use xz
            import compression.zstd as zstd
        except ImportError:
            raise SystemExit(f"deb_prefix: {deb} is compressed with zstd, which this Python "
                             "cannot read: use Debian's packages (xz) or Python 3.14")
        payload = zstd.decompress(payload)
    return tarfile.open(fileobj=io.BytesIO(payload))


def checked_members(deb, tar):
    """A package's files, none of them written outside the prefix, no device nodes."""
    for member in tar.getmembers():
        if member.name.startswith("/") or ".." in Path(member.name).parts:
            raise SystemExit(f"deb_prefix: {deb}: refusing {member.name}: it is outside the prefix")
        if not member.isdev():
            yield member


def postinst_alternatives(script):
    """(link, target) pairs of the update-alternatives calls in a package's postinst."""
    script = script.replace("\\\n", " ")
    pairs = []
    for line in script.splitlines():
        if "update-alternatives" not in line or "$" in line:
            continue  # a call built from variables is not one we can read off
        words = shlex.split(line, comments=True)
        for i, word in enumerate(words):
            if word in ("--install", "--slave") and i + 3 < len(words):
                pairs.append((words[i + 1], words[i + 3]))
    return pairs


def repoint_absolute_links(prefix):
    for link in [p for p in prefix.rglob("*") if p.is_symlink()]:
        target = os.readlink(link)
        if target.startswith("/"):
            inside = prefix / target.lstrip("/")
            link.unlink()
            link.symlink_to(os.path.relpath(inside, link.parent))


PREFIX_LINE = re.compile(r'^(\s*prefix\s*=\s*)("?)/usr\2\s*$', re.MULTILINE)


def relocate_prefix_lines(prefix):
    """Compiler wrappers (h5cc) and pkg-config files that say prefix=/usr: point them here."""
    usr = str(prefix.resolve() / "usr")
    candidates = [p for p in (prefix / "usr" / "bin").glob("*") if p.is_file() and not p.is_symlink()]
    candidates += [p for p in prefix.rglob("*.pc") if p.is_file() and not p.is_symlink()]
    moved = 0
    for path in candidates:
        head = path.read_bytes()[:2]
        if path.suffix != ".pc" and head != b"#!":
            continue  # a binary: Open MPI's are moved by OPAL_PREFIX instead
        text = path.read_text(errors="surrogateescape")
        new = PREFIX_LINE.sub(lambda m: f"{m.group(1)}{m.group(2)}{usr}{m.group(2)}", text)
        if new != text:
            path.write_text(new, errors="surrogateescape")
            moved += 1
    return moved


def make_alternative_links(prefix, alternatives):
    """Debian picks one provider per alternative; the first whose target we unpacked wins."""
    made = 0
    for link, target in alternatives:
        inside_link, inside_target = prefix / link.lstrip("/"), prefix / target.lstrip("/")
        if inside_link.exists() or inside_link.is_symlink() or not inside_target.exists():
            continue
        inside_link.parent.mkdir(parents=True, exist_ok=True)
        inside_link.symlink_to(os.path.relpath(inside_target, inside_link.parent))
        made += 1
    return made


def write_env(prefix):
    usr = prefix.resolve() / "usr"
    multiarch = f"{os.uname().machine}-linux-gnu"  # Debian's multiarch folder on x86_64, aarch64
    libs = [usr / "lib" / multiarch, usr / "lib", usr / "lib" / multiarch / "openmpi" / "lib",
            usr / "lib" / multiarch / "openblas-openmp", usr / "lib" / multiarch / "hdf5" / "serial"]
    lines = [
        "# Written by scripts/setup.sh --prefix: `source` it before configuring, building or running.",
        f'export QWEN3_PREFIX="{prefix.resolve()}"',
        f'export PATH="{usr / "bin"}${{PATH:+:$PATH}}"',
        f'export LD_LIBRARY_PATH="{":".join(map(str, libs))}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"',
        f'export CMAKE_PREFIX_PATH="{usr}${{CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}}"',
        f'export PKG_CONFIG_PATH="{usr / "lib" / multiarch / "pkgconfig"}:{usr / "share" / "pkgconfig"}'
        '${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"',
        "# Open MPI was built for /usr: this moves it, its wrappers and its help files, to here.",
        f'export OPAL_PREFIX="{usr}"',
        f'export PMIX_PREFIX="{usr}"',
    ]
    (prefix / "env.sh").write_text("\n".join(lines) + "\n")


def main(argv):
    if len(argv) >= 2 and argv[0] == "closure":
        print("\n".join(closure(argv[1:])))
    elif len(argv) == 3 and argv[0] == "unpack":
        unpack(argv[1], Path(argv[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
