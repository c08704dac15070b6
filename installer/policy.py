"""`vigil-policy`: check IT's policy file and put it into a built package.

The check is the client's own (client/core/policy.py), so a policy that passes here is one the
installed app accepts. `inject` writes a new package with the policy at /etc/vigil/policy.json
(the .deb, where it is a conffile) or policy.json at the top of the tarball, and, with
`--ca-bundle`, the CA bundle at the path the policy names. The result is a new file: sign or
checksum it again before handing it out.

    vigil-policy check policy.json [--ca-bundle ca.pem]
    vigil-policy inject policy.json dist/vigil_0.1.0_amd64.deb --output site/vigil_0.1.0_amd64.deb
"""

from __future__ import annotations

import argparse
import json
import posixpath
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from client.core.errors import PolicyError
from client.core.hub_address import is_loopback_host
from client.core.policy import load_policy

DEB_POLICY_PATH = "etc/vigil/policy.json"


class PolicyStepError(Exception):
    """The policy or the package cannot be used; the message says why."""


def check_policy(policy_path: Path, ca_bundle: Path | None = None) -> bytes:
    """Validate IT's policy as the app will; returns its bytes. PolicyStepError if it is bad.

    `ca_bundle` is the local copy of the CA bundle the policy names (that path usually exists
    only on the agents' computers): it is checked in place of the policy's path.
    """
    try:
        data = policy_path.read_bytes()
    except FileNotFoundError:
        raise PolicyStepError(f"The policy file {policy_path} does not exist.") from None
    except OSError as exc:
        raise PolicyStepError(
            f"The policy file {policy_path} cannot be read: {exc.strerror}."
        ) from None
    with tempfile.TemporaryDirectory(prefix="vigil-policy-") as folder:
        checked = Path(folder) / "policy.json"
        checked.write_bytes(_with_local_ca(data, policy_path, ca_bundle))
        try:
            load_policy(checked)
        except PolicyError as exc:
            raise PolicyStepError(exc.message.replace(str(checked), str(policy_path))) from None
    return data


def policy_warnings(policy: bytes) -> list[str]:
    """Things a valid policy should still not ship without, as sentences for IT."""
    raw = json.loads(policy.decode("utf-8-sig"))
    hub_urls = raw.get("hub_urls")
    hub_url = raw.get("hub_url") or (hub_urls[0] if isinstance(hub_urls, list) else None)
    host = urlsplit(hub_url).hostname if isinstance(hub_url, str) else None
    production = host is not None and not is_loopback_host(host)
    if production and raw.get("content_key_id") is None:
        return [
            f"the policy sets the hub {hub_url} but no content_key_id: each computer then trusts "
            "whichever content-signing key the hub offers the first time it syncs. Pin the key "
            "id the hub shows at /v1/keys."
        ]
    return []


def ca_bundle_target(policy: bytes) -> str | None:
    """The absolute path where the policy expects its CA bundle, or None."""
    value = json.loads(policy.decode("utf-8-sig")).get("ca_bundle")
    return value if isinstance(value, str) else None


def _with_local_ca(data: bytes, policy_path: Path, ca_bundle: Path | None) -> bytes:
    if ca_bundle is None:
        return data
    try:
        raw = json.loads(data.decode("utf-8-sig"))
    except ValueError:
        # Not JSON: the client's check gives the precise message.
        return data
    if not isinstance(raw, dict) or not isinstance(raw.get("ca_bundle"), str):
        raise PolicyStepError(
            f"--ca-bundle was given, but {policy_path} sets no ca_bundle path to install it at."
        )
    raw["ca_bundle"] = str(ca_bundle.resolve())
    return json.dumps(raw).encode("utf-8")


def inject(
    policy_path: Path, package: Path, output: Path, *, ca_bundle: Path | None = None
) -> Path:
    """Write `output`: `package` (.deb or .tar.gz) carrying the checked policy (and CA bundle)."""
    policy = check_policy(policy_path, ca_bundle)
    extra: dict[str, bytes] = {}
    if ca_bundle is not None:
        target = ca_bundle_target(policy) or ""
        extra[_package_path(target)] = ca_bundle.read_bytes()
    if output.exists():
        raise PolicyStepError(f"{output} already exists; choose another --output.")
    output.parent.mkdir(parents=True, exist_ok=True)
    if package.name.endswith(".deb"):
        _inject_deb(policy, extra, package, output)
    elif package.name.endswith(".tar.gz"):
        _inject_tarball(policy, extra, package, output)
    else:
        raise PolicyStepError(f"{package} is neither a .deb nor a .tar.gz built by Vigil.")
    return output


def _package_path(target: str) -> str:
    """The policy's absolute ca_bundle path as a path inside the package; PolicyStepError for one
    that could leave it (`..`, `.`, empty parts) or names no file."""
    parts = target.split("/")
    if not target.startswith("/") or any(part in ("", ".", "..") for part in parts[1:]):
        raise PolicyStepError(
            f"The policy's ca_bundle {target!r} must be a plain absolute path to a file, without "
            "'..', '.' or empty parts; nothing was written."
        )
    return posixpath.normpath(target).lstrip("/")


def _inside(root: Path, relative: str) -> Path:
    """`root / relative`, refused if it resolves outside `root` (a symlink in the package)."""
    path = root / relative
    if not path.resolve().is_relative_to(root.resolve()):
        raise PolicyStepError(
            f"The policy's ca_bundle /{relative} would be written outside the package; nothing "
            "was written."
        )
    return path


def _inject_deb(policy: bytes, extra: dict[str, bytes], package: Path, output: Path) -> None:
    from installer.deb import build_deb, write_md5sums

    with tempfile.TemporaryDirectory(prefix="vigil-deb-") as folder:
        root = Path(folder) / "root"
        _run(["dpkg-deb", "--raw-extract", str(package), str(root)])
        if not (root / DEB_POLICY_PATH).is_file():
            raise PolicyStepError(f"{package} is not a Vigil package (no /{DEB_POLICY_PATH}).")
        (root / DEB_POLICY_PATH).write_bytes(policy)
        conffiles = root / "DEBIAN" / "conffiles"
        listed = conffiles.read_text(encoding="utf-8").split()
        for relative, content in extra.items():
            if not relative.startswith("etc/vigil/"):
                raise PolicyStepError(
                    f"The policy's ca_bundle /{relative} must be under /etc/vigil/ to be installed "
                    "by the package."
                )
            path = _inside(root, relative)
            path.parent.mkdir(parents=True, exist_ok=True)
            _inside(root, relative).write_bytes(content)
            path.chmod(0o644)
            if f"/{relative}" not in listed:
                listed.append(f"/{relative}")
        conffiles.write_text("".join(f"{name}\n" for name in listed), encoding="utf-8")
        write_md5sums(root)
        build_deb(root, output)


def _inject_tarball(policy: bytes, extra: dict[str, bytes], package: Path, output: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="vigil-tar-") as folder:
        root = Path(folder)
        with tarfile.open(package, "r:gz") as archive:
            archive.extractall(root, filter="tar")
        tops = [p for p in root.iterdir() if p.is_dir()]
        if len(tops) != 1 or not (tops[0] / "vigil").is_file():
            raise PolicyStepError(f"{package} is not a Vigil tarball (no top folder with vigil).")
        top = tops[0]
        (top / "policy.json").write_bytes(policy)
        for relative, content in extra.items():
            _inside(top, Path(relative).name).write_bytes(content)
        with tarfile.open(output, "w:gz", compresslevel=6) as archive:
            archive.add(top, arcname=top.name, filter=_root_owned)


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _run(command: list[str]) -> None:
    if shutil.which(command[0]) is None:
        raise PolicyStepError(f"{command[0]} is needed for this step; install it (Debian: dpkg).")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PolicyStepError(f"{' '.join(command[:2])} failed: {result.stderr.strip()}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: check, inject."""
    parser = argparse.ArgumentParser(
        prog="vigil-policy", description="Check IT's Vigil policy file and put it into a package."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate a policy file as the app will")
    check.add_argument("policy", type=Path)
    check.add_argument("--ca-bundle", type=Path, help="local copy of the CA bundle it names")
    put = commands.add_parser("inject", help="write a package that carries the policy")
    put.add_argument("policy", type=Path)
    put.add_argument("package", type=Path, help="a Vigil .deb or .tar.gz")
    put.add_argument("--output", type=Path, required=True)
    put.add_argument("--ca-bundle", type=Path, help="installed at the path the policy names")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            data = check_policy(args.policy, args.ca_bundle)
            for warning in policy_warnings(data):
                print(f"vigil-policy: warning: {args.policy}: {warning}", file=sys.stderr)
            print(f"{args.policy}: valid")
        else:
            out = inject(args.policy, args.package, args.output, ca_bundle=args.ca_bundle)
            print(f"wrote {out}; sign it or add it to your checksums before handing it out")
    except PolicyStepError as exc:
        print(f"vigil-policy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
