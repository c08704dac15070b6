"""Liveness, the caller's network as the hub sees it, and update manifests."""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from hub.client_address import UNKNOWN
from hub.deps import SettingsDep, SourceAddress
from hub.errors import ApiError, error_responses

router = APIRouter()

_PLATFORM = r"^[a-z0-9_-]{1,40}$"


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The hub is up."""
    return {"status": "ok"}


@router.get("/v1/netcheck")
def netcheck(settings: SettingsDep, source: SourceAddress) -> dict[str, Any]:
    """The caller's address and whether it is one of the configured VPN egress ranges."""
    client_ip = None if source == UNKNOWN else source
    via_vpn: bool | None = None
    networks = settings.vpn_networks
    if networks:
        via_vpn = False
        if client_ip is not None:
            try:
                address = ipaddress.ip_address(client_ip)
            except ValueError:
                address = None
            if address is not None:
                # An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
                if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                    address = address.ipv4_mapped
                via_vpn = any(address in network for network in networks)
    return {"client_ip": client_ip, "via_vpn": via_vpn}


@router.get("/v1/updates/latest", responses=error_responses(404, 422))
def latest_update(
    settings: SettingsDep,
    platform: Annotated[str, Query(min_length=1, max_length=40, pattern=_PLATFORM)],
) -> Response:
    """The update manifest IT placed for a platform, exactly as placed."""
    manifest = settings.data_dir / "updates" / f"{platform}.json"
    try:
        body = manifest.read_bytes()
    except FileNotFoundError:
        raise ApiError(
            404, "no_update", f"No update is published for {platform}; you are up to date."
        ) from None
    try:
        json.loads(body)
    except ValueError:
        raise ApiError(
            500,
            "internal_error",
            f"The update manifest for {platform} on the hub is not valid JSON. Tell IT.",
        ) from None
    return Response(content=body, media_type="application/json")
