#!/usr/bin/env bash
# Build, sign and notarise the macOS installer package. UNTESTED: written for the release process,
# never run here (the project's build machines are Linux). Run on a Mac after
# `python -m installer.build` has made dist/Vigil.app:
#   DEVELOPER_ID_APP="Developer ID Application: Example Health (TEAMID)" \
#   DEVELOPER_ID_INSTALLER="Developer ID Installer: Example Health (TEAMID)" \
#   NOTARY_PROFILE=vigil-notary installer/macos/build-pkg.sh 0.1.0 [policy.json]
# NOTARY_PROFILE is a keychain profile made once with `xcrun notarytool store-credentials`.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=${1:?usage: build-pkg.sh VERSION [policy.json]}
policy=${2:-}
app=dist/Vigil.app
out=dist/vigil-${version}-macos.pkg
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Sign every binary inside the bundle, then the bundle, with the hardened runtime notarisation needs.
codesign --force --deep --options runtime --timestamp --sign "$DEVELOPER_ID_APP" "$app"
codesign --verify --deep --strict --verbose=2 "$app"

mkdir -p "$work/root/Applications" "$work/scripts"
cp -R "$app" "$work/root/Applications/"
if [[ -n $policy ]]; then
    .venv/bin/vigil-policy check "$policy"
    cp "$policy" "$work/scripts/policy.json"
    # Installed only when absent: an upgrade never overwrites the policy already on the Mac.
    cat > "$work/scripts/postinstall" <<'SCRIPT'
#!/bin/sh
target="/Library/Application Support/Vigil/policy.json"
if [ ! -f "$target" ]; then
    mkdir -p "$(dirname "$target")"
    cp "$(dirname "$0")/policy.json" "$target"
    chmod 644 "$target"
fi
SCRIPT
    chmod +x "$work/scripts/postinstall"
fi

pkgbuild --root "$work/root" --scripts "$work/scripts" --identifier org.vigil.tray \
    --version "$version" --install-location / "$work/vigil-component.pkg"
productbuild --package "$work/vigil-component.pkg" --sign "$DEVELOPER_ID_INSTALLER" "$out"

xcrun notarytool submit "$out" --keychain-profile "$NOTARY_PROFILE" --wait
xcrun stapler staple "$out"
spctl --assess --type install --verbose "$out"
echo "built $out"
