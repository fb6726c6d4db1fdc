"""Data for schemathesis's stateful phase, made through the generated clients.

Run by scripts/contract after the generated-client trade. Random data rarely names a fiat
provider that exists or a valid payout key, so without this the stateful phase would follow
almost no link. Makes a fiat provider and a maker whose offers are funded and listed (so the
book's links lead to offers another session can claim), and prints three words:
the provider's id, a valid x-only payout key, and how many offers are listed.
"""

from __future__ import annotations

import io
import sys
import uuid

from contract_trade import (
    ADMIN_TOKEN,
    ADMIN_URL,
    API_URL,
    PNG,
    TIMEOUT,
    create,
    devclient,
    make_provider,
    ok,
    party,
    wait_for,
)
from openpleb_admin_client import AuthenticatedClient as AdminClient
from openpleb_client import AuthenticatedClient, Client
from openpleb_client.api.disputes import add_evidence
from openpleb_client.api.meta import get_config
from openpleb_client.models import AddEvidenceBody, EvidenceAdded, PlatformConfig
from openpleb_client.types import File

LISTED = 6


def main() -> None:
    public = Client(base_url=API_URL, timeout=TIMEOUT)
    admin = AdminClient(base_url=ADMIN_URL, token=ADMIN_TOKEN, timeout=TIMEOUT)
    config = ok(get_config.sync_detailed(client=public), 200, PlatformConfig, "getConfig")
    provider = make_provider(admin, "Stateful SEPA")
    maker = party(public, admin, "book maker")
    ids = []
    for _ in range(LISTED):
        _, key = devclient("key")
        ids.append(create(maker, config.currency, provider, key).offer.id)
    for offer_id in ids:
        wait_for(maker, offer_id, "INVOICE_PAID")
    disputed, taker_bat = devclient("open-dispute")[-2:]
    taker = AuthenticatedClient(base_url=API_URL, token=taker_bat, timeout=TIMEOUT)
    evidence = AddEvidenceBody(image=File(payload=io.BytesIO(PNG), file_name="evidence.png", mime_type="image/png"))
    ok(add_evidence.sync_detailed(uuid.UUID(disputed), client=taker, body=evidence), 201, EvidenceAdded, "addEvidence")
    _, key = devclient("key")
    print(provider.id, key, len(ids), disputed)


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    main()
