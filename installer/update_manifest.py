"""Write the signed update manifest the hub serves (DATA/updates/<platform>.json).

The format and every check the client makes are in client/core/updates.py. Give each manifest a
manifest number higher than the last one published for that key (clients refuse lower ones), and
an expiry: clients refuse an expired manifest, so publish a fresh one before it runs out.

    python -m installer.update_manifest --secret-key release.key --manifest-version 7 \\
        --artifact dist/vigil-0.2.0-linux-x86_64.tar.gz \\
        --url https://downloads.example.org/vigil/vigil-0.2.0-linux-x86_64.tar.gz \\
        --version 0.2.0 --minimum-version 0.1.0 --notes "Fixes ..." --out linux-x86_64.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from client.core.updates import MANIFEST_TYPE, manifest_signing_bytes, parse_version
from installer import signing


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def signed_part(
    *,
    manifest_version: int,
    platform: str,
    version: str,
    minimum_supported_version: str,
    notes: str,
    url: str,
    size: int,
    sha256: str,
    issued_at: datetime,
    expires: datetime,
) -> dict[str, Any]:
    """The manifest's `signed` object."""
    parse_version(version)
    parse_version(minimum_supported_version)
    return {
        "type": MANIFEST_TYPE,
        "manifest_version": manifest_version,
        "issued_at": _utc(issued_at),
        "expires": _utc(expires),
        "platform": platform,
        "version": version,
        "minimum_supported_version": minimum_supported_version,
        "notes": notes,
        "artifact": {"url": url, "size": size, "sha256": sha256},
    }


def sign_manifest(key: signing.SecretKey, signed: dict[str, Any]) -> dict[str, Any]:
    """The whole manifest: `signed` and its minisign signature (over RFC 8785 of `signed`)."""
    comment = (
        f"vigil update manifest {signed['manifest_version']} for {signed['platform']}: "
        f"version {signed['version']}"
    )
    signature = signing.sign_bytes(key, manifest_signing_bytes(signed), trusted_comment=comment)
    return {"signed": signed, "signature": signature.file_text()}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write one signed manifest."""
    parser = argparse.ArgumentParser(
        prog="python -m installer.update_manifest", description="Write a signed update manifest."
    )
    parser.add_argument("--secret-key", type=Path, required=True)
    parser.add_argument("--artifact", type=Path, required=True, help="the release file")
    parser.add_argument("--url", required=True, help="where clients download it (https://)")
    parser.add_argument("--version", required=True, help="the release's version, e.g. 0.2.0")
    parser.add_argument("--minimum-version", required=True, help="oldest version still supported")
    parser.add_argument("--manifest-version", type=int, required=True)
    parser.add_argument("--platform", default="linux-x86_64")
    parser.add_argument("--notes", default="")
    parser.add_argument("--expires-days", type=int, default=30)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        data = args.artifact.read_bytes()
        now = datetime.now(UTC)
        signed = signed_part(
            manifest_version=args.manifest_version,
            platform=args.platform,
            version=args.version,
            minimum_supported_version=args.minimum_version,
            notes=args.notes,
            url=args.url,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            issued_at=now,
            expires=now + timedelta(days=args.expires_days),
        )
        manifest = sign_manifest(signing.load_secret_key_file(args.secret_key), signed)
    except (OSError, ValueError, signing.SigningError) as exc:
        print(f"update_manifest: {exc}", file=sys.stderr)
        return 1
    args.out.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: manifest {args.manifest_version}, version {args.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
