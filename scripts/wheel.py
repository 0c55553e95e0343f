"""Wraps the release binary in a wheel (bindings "bin", as maturin makes them):
`pip install` / `uv pip install` put `artifact` on PATH. Deterministic: fixed
dates and order, so the same binary gives the same wheel bytes.

Usage: python wheel.py <binary> <version> <platform tag> <out dir>   (prints the wheel's path)
"""

import base64
import hashlib
import os
import sys
import zipfile


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def main():
    binary, version, platform, out = sys.argv[1:5]
    tag = f"py3-none-{platform}"
    wheel = os.path.join(out, f"artifact-{version}-{tag}.whl")
    info = f"artifact-{version}.dist-info"
    with open(binary, "rb") as f:
        exe = f.read()
    files = [
        (f"artifact-{version}.data/scripts/artifact", exe, 0o755),
        (f"{info}/METADATA", (
            "Metadata-Version: 2.1\n"
            f"Name: artifact\nVersion: {version}\n"
            "Summary: Builds and deploys the artifacts of an AWS serverless application from its CI/CD pipeline\n"
            "License: MIT OR Apache-2.0\n"
        ).encode(), 0o644),
        (f"{info}/WHEEL", (
            "Wheel-Version: 1.0\nGenerator: artifact scripts/wheel.py\n"
            f"Root-Is-Purelib: false\nTag: {tag}\n"
        ).encode(), 0o644),
    ]
    record = "\n".join(record_line(n, d) for n, d, _ in files) + f"\n{info}/RECORD,,\n"
    files.append((f"{info}/RECORD", record.encode(), 0o644))
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, mode in files:
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = (0o100000 | mode) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    print(wheel)


if __name__ == "__main__":
    main()
