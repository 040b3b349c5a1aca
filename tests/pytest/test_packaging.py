"""Headers include the project's headers by relative paths, so the installed tree
<prefix>/include/glassbox/<folder>/ works on its own (docs/architecture.md, "Packaging")."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
FOLDERS = ["core", "kernels", "autograd", "layers", "io", "models", "train", "explain"]
ROOT_RELATIVE = re.compile(r'^\s*#\s*include\s+"((?:' + "|".join(FOLDERS) + r')/[^"]+)"', re.M)


def test_headers_include_relatively():
    offenders = []
    for folder in FOLDERS:
        for header in (ROOT / folder).rglob("*"):
            if header.suffix in (".h", ".def", ".cuh"):
                for m in ROOT_RELATIVE.finditer(header.read_text()):
                    offenders.append(f"{header.relative_to(ROOT)}: \"{m.group(1)}\"")
    assert not offenders, "root-relative includes in headers (use ../folder/x.h):\n" + "\n".join(offenders)


def test_relative_includes_resolve():
    include = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
    missing = []
    for folder in FOLDERS:
        for header in (ROOT / folder).rglob("*.h"):
            for name in include.findall(header.read_text()):
                if not (header.parent / name).exists():
                    missing.append(f"{header.relative_to(ROOT)}: \"{name}\"")
    assert not missing, "includes that do not resolve from the header's folder:\n" + "\n".join(missing)
