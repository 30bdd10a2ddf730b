#!/usr/bin/env bash
# install-web-assets.sh — put the API docs' browser assets into web/vendor/.
#
# /docs (Swagger UI) and /redoc (ReDoc) must work offline, so the gateway serves their
# JavaScript and CSS itself from web/vendor/ (gitignored). This script fetches pinned
# versions of the two npm packages with `npm pack` (no node_modules, no dependency tree:
# we only need the prebuilt browser bundles), checks each tarball against a pinned
# SHA-512, and copies the files we serve:
#
#   web/vendor/swagger-ui/  swagger-ui.css swagger-ui-bundle.js swagger-ui-standalone-preset.js
#                           favicon-16x16.png favicon-32x32.png LICENSE NOTICE
#   web/vendor/redoc/       redoc.standalone.js redoc.standalone.js.LICENSE.txt LICENSE
#
# The ReDoc bundle is patched so it never fetches its logo from cdn.redoc.ly (see below).
#
# Idempotent: when web/vendor/.installed already names these versions and every file is
# there, it exits at once without touching the network. To upgrade, change the versions
# AND the hashes below (`npm pack swagger-ui-dist@X && sha512sum swagger-ui-dist-X.tgz`).
#
# Why redoc 2.x and not 3.x: redoc 3 (redoc.standalone.js as an ES module) ships
# OpenTelemetry telemetry that reports to Redocly by default and links out to AI services;
# 2.5.x is the maintained classic line with the same `Redoc.init` bundle and no telemetry.
#
# Environment: WEB_VENDOR_DIR overrides the destination (default: <repo>/web/vendor).
# Needs: npm (Debian: apt-get install -y npm), tar, sha512sum. Exits non-zero on failure.
set -euo pipefail

SWAGGER_UI_VERSION=5.35.0
SWAGGER_UI_SHA512=534eaba4cb56f55dd73c638179a993512af4674f63317e0826e00da44fc465b021c341bc0a0c2bcd4e18997927fe1d3008336c5dd19aad334d1c2dec53cc9551
REDOC_VERSION=2.5.4
REDOC_SHA512=33a8d6846d6aa019c7e93166cc99ecb72099f3b1e6398fd4cc39bbf261e262284476557f61c4bda203a8d4d94496724c78bb32c4715edb215ce2c3631d3ac005

SWAGGER_FILES=(swagger-ui.css swagger-ui-bundle.js swagger-ui-standalone-preset.js
               favicon-16x16.png favicon-32x32.png LICENSE NOTICE)
REDOC_FILES=(bundles/redoc.standalone.js bundles/redoc.standalone.js.LICENSE.txt LICENSE)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${WEB_VENDOR_DIR:-$ROOT/web/vendor}
# Bump the trailing patch level when the post-install patching below changes.
STAMP_TEXT="swagger-ui-dist@$SWAGGER_UI_VERSION redoc@$REDOC_VERSION patch=1"

die() {
    echo "install-web-assets: error: $*" >&2
    exit 1
}

already_installed() {
    local f
    [[ -f $DEST/.installed && "$(<"$DEST/.installed")" == "$STAMP_TEXT" ]] || return 1
    for f in "${SWAGGER_FILES[@]}"; do
        [[ -s $DEST/swagger-ui/$f ]] || return 1
    done
    for f in "${REDOC_FILES[@]}"; do
        [[ -s $DEST/redoc/${f##*/} ]] || return 1
    done
    return 0
}

if already_installed; then
    echo "install-web-assets: $STAMP_TEXT already in $DEST"
    exit 0
fi

command -v npm >/dev/null 2>&1 ||
    die "npm not found; install Node.js and npm first (Debian: apt-get install -y npm)"
command -v sha512sum >/dev/null 2>&1 || die "sha512sum not found (coreutils)"
command -v tar >/dev/null 2>&1 || die "tar not found"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vap-web-assets.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# fetch <package> <version> <sha512-hex>: npm pack into $WORK, verify, unpack into $WORK/<package>.
fetch() {
    local pkg=$1 version=$2 sha=$3 tgz
    tgz="$pkg-$version.tgz"
    echo "install-web-assets: fetching $pkg@$version"
    if ! (cd "$WORK" && npm pack --loglevel=error --prefer-offline --no-audit --no-fund \
        "$pkg@$version" >"$WORK/npm-$pkg.log" 2>&1); then
        sed 's/^/  npm: /' "$WORK/npm-$pkg.log" >&2
        die "npm pack $pkg@$version failed (no access to the npm registry and not in npm's cache?)"
    fi
    [[ -f $WORK/$tgz ]] || die "npm pack did not produce $tgz"
    echo "$sha  $WORK/$tgz" | sha512sum --check --status ||
        die "$tgz does not match its pinned SHA-512; refusing to install it"
    mkdir -p "$WORK/$pkg"
    tar -xzf "$WORK/$tgz" -C "$WORK/$pkg" --strip-components=1 ||
        die "cannot unpack $tgz"
}

fetch swagger-ui-dist "$SWAGGER_UI_VERSION" "$SWAGGER_UI_SHA512"
fetch redoc "$REDOC_VERSION" "$REDOC_SHA512"

# Build the new tree beside the old one, then swap, so a failure never leaves half a tree.
STAGE="$WORK/vendor"
mkdir -p "$STAGE/swagger-ui" "$STAGE/redoc"
for f in "${SWAGGER_FILES[@]}"; do
    [[ -s $WORK/swagger-ui-dist/$f ]] || die "swagger-ui-dist@$SWAGGER_UI_VERSION lacks $f"
    cp "$WORK/swagger-ui-dist/$f" "$STAGE/swagger-ui/"
done
for f in "${REDOC_FILES[@]}"; do
    [[ -s $WORK/redoc/$f ]] || die "redoc@$REDOC_VERSION lacks $f"
    cp "$WORK/redoc/$f" "$STAGE/redoc/"
done
# ReDoc 2.x draws the logo of its "API docs by Redocly" sidebar link from cdn.redoc.ly on
# every page view. Blank that URL so /redoc makes no outside request even without a CSP
# (an <img> with an empty src fetches nothing; ReDoc then drops the image).
REDOC_LOGO_URL="https://cdn.redoc.ly/redoc/logo-mini.svg"
grep -qF "\"$REDOC_LOGO_URL\"" "$STAGE/redoc/redoc.standalone.js" ||
    die "redoc@$REDOC_VERSION: logo URL not found; review the patch below for this version"
sed -i "s#\"$REDOC_LOGO_URL\"#\"\"#g" "$STAGE/redoc/redoc.standalone.js"
! grep -q 'cdn\.redoc\.ly' "$STAGE/redoc/redoc.standalone.js" ||
    die "redoc@$REDOC_VERSION still references cdn.redoc.ly after patching"
# Never committed, even where the repository's .gitignore does not list web/vendor/.
printf '*\n' >"$STAGE/.gitignore"
printf '%s\n' "$STAMP_TEXT" >"$STAGE/.installed"

mkdir -p "$(dirname "$DEST")" || die "cannot create $(dirname "$DEST")"
if [[ -e $DEST ]]; then
    rm -rf "$DEST.old"
    mv "$DEST" "$DEST.old" || die "cannot move the old $DEST aside"
fi
if ! cp -a "$STAGE" "$DEST"; then
    rm -rf "$DEST"
    [[ -e $DEST.old ]] && mv "$DEST.old" "$DEST"
    die "cannot write $DEST"
fi
rm -rf "$DEST.old"
echo "install-web-assets: installed $STAMP_TEXT into $DEST"
