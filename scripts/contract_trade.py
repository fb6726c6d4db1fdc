"""One whole trade through the Python clients generated from openapi.yaml and openapi-admin.yaml.

Run by scripts/contract against its dev stack, with the generated packages `openpleb_client` and
`openpleb_admin_client` on PYTHONPATH. Every API call goes through a generated operation and
typed model; no request or response JSON is written or read here. What a client would do with
its own crypto (BIP-340 signing, minting BATs at the mint, redeeming ecash) is done by
`openpleb-devclient` (DEVCLIENT): key, sign-registration, bats-for, redeem.

register -> session -> offer -> deposit (the dev mint pays the invoice) -> claim -> bond (paid
likewise) -> receipt -> complete -> payouts, redeemed with the payout keys.
Exit 0 only if every sat arrived where it should.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import uuid
from typing import Any

from openpleb_admin_client import AuthenticatedClient as AdminClient
from openpleb_admin_client.api.admin import create_fiat_provider, create_invite_code
from openpleb_admin_client.models import CreateInvite, InviteView, ProviderInput, ProviderKind, ProviderView
from openpleb_client import AuthenticatedClient, Client
from openpleb_client.api.meta import get_config
from openpleb_client.api.offers import (
    claim_offer,
    complete_offer,
    create_offer,
    get_offer,
    get_payouts,
    submit_receipt,
)
from openpleb_client.api.sessions import open_session
from openpleb_client.api.users import register_user
from openpleb_client.models import (
    BatBody,
    ClaimedOffer,
    ClaimOffer,
    CreatedOffer,
    CreateOffer,
    OfferView,
    PayoutView,
    PlatformConfig,
    RegisterRequest,
    RegistrationPayload,
    SessionView,
    SubmitReceiptBody,
    UserView,
)
from openpleb_client.types import File

API_URL = os.environ["API_URL"]
ADMIN_URL = os.environ["ADMIN_URL"]
ADMIN_TOKEN = os.environ["ADMIN_TOKEN"]
DEVCLIENT = os.environ["DEVCLIENT"]
TIMEOUT = 60.0

# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000a49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)


def devclient(*args: str) -> list[str]:
    """Runs the dev client; its stdout split into words."""
    out = subprocess.run([DEVCLIENT, *args], check=True, capture_output=True, text=True)
    return out.stdout.split()


def ok(resp: Any, status: int, kind: type, what: str) -> Any:
    """The parsed body of `resp`, which must have `status` and parse as `kind`."""
    if resp.status_code != status or not isinstance(resp.parsed, kind):
        sys.exit(f"{what}: expected {status} {kind.__name__}, got {resp.status_code}: {resp.parsed}")
    return resp.parsed


def party(public: Client, admin: AdminClient, name: str) -> AuthenticatedClient:
    """An invite, a registration, a BAT and a session: a trader's client."""
    invite = ok(create_invite_code.sync_detailed(client=admin, body=CreateInvite()), 201, InviteView, "createInviteCode")
    code = invite.code
    secret, pubkey = devclient("key")
    nonce, timestamp, signature = devclient("sign-registration", secret, code)
    request = RegisterRequest(
        payload=RegistrationPayload(invite_code=code, pubkey=pubkey),
        nonce=nonce,
        timestamp=int(timestamp),
        signature=signature,
    )
    user = ok(register_user.sync_detailed(client=public, body=request), 201, UserView, "registerUser")
    print(f"[{name}] registered {user.pubkey} ({user.status})")
    (bat,) = devclient("bats-for", secret, "1")
    ok(open_session.sync_detailed(client=public, body=BatBody(bat=bat)), 201, SessionView, "openSession")
    print(f"[{name}] opened an anonymous session with a BAT")
    return AuthenticatedClient(base_url=API_URL, token=bat, timeout=TIMEOUT)


def make_provider(admin: AdminClient, prefix: str) -> ProviderView:
    """A bank-transfer fiat provider with a fresh name."""
    body = ProviderInput(name=f"{prefix} {uuid.uuid4().hex[:8]}", kind=ProviderKind.BANK_TRANSFER)
    return ok(create_fiat_provider.sync_detailed(client=admin, body=body), 201, ProviderView, "createFiatProvider")


def create(maker: AuthenticatedClient, currency: str, provider: ProviderView, key: str, **extra: Any) -> CreatedOffer:
    """A 25.00 offer paid through `provider`, its payout locked to `key`."""
    body = CreateOffer(
        fiat_amount=2500,
        currency=currency,
        fiat_provider_id=provider.id,
        payment_details="IBAN DE89 3704 0044 0532 0130 00",
        maker_payout_pubkey=key,
        **extra,
    )
    return ok(create_offer.sync_detailed(client=maker, body=body), 201, CreatedOffer, "createOffer")


def wait_for(who: AuthenticatedClient, offer_id: uuid.UUID, status: str) -> OfferView:
    """Polls the offer until it reaches `status`."""
    for _ in range(240):
        offer = ok(get_offer.sync_detailed(offer_id, client=who), 200, OfferView, "getOffer")
        if offer.status == status:
            return offer
        time.sleep(0.5)
    sys.exit(f"offer {offer_id} never reached {status}")


def released(who: AuthenticatedClient, offer_id: uuid.UUID) -> list[PayoutView]:
    """Polls the caller's payouts until every one is released."""
    for _ in range(240):
        payouts = ok(get_payouts.sync_detailed(offer_id, client=who), 200, list, "getPayouts")
        if payouts and all(isinstance(p, PayoutView) and p.state == "RELEASED" for p in payouts):
            return payouts
        time.sleep(0.5)
    sys.exit(f"the payouts of {offer_id} were not released")


def redeem(secret: str, payouts: list[PayoutView]) -> int:
    """Redeems the payout tokens with the payout key; the sats received."""
    tokens = [p.token for p in payouts if isinstance(p.token, str)]
    (sats,) = devclient("redeem", secret, *tokens)
    return int(sats)


def main() -> None:
    public = Client(base_url=API_URL, timeout=TIMEOUT)
    admin = AdminClient(base_url=ADMIN_URL, token=ADMIN_TOKEN, timeout=TIMEOUT)
    config = ok(get_config.sync_detailed(client=public), 200, PlatformConfig, "getConfig")
    provider = make_provider(admin, "Contract SEPA")
    print(f"[admin] fiat provider {provider.name}")
    maker = party(public, admin, "maker")
    taker = party(public, admin, "taker")

    maker_secret, maker_key = devclient("key")
    created = create(maker, config.currency, provider, maker_key, description="generated-client trade")
    offer_id = created.offer.id
    print(f"[maker] offer {offer_id}: deposit invoice for {created.deposit.amount_sats} sats (the dev mint pays it)")
    funded = wait_for(maker, offer_id, "INVOICE_PAID")
    print("[maker] deposit paid: the offer is in the book")

    taker_secret, taker_key = devclient("key")
    claimed = ok(
        claim_offer.sync_detailed(offer_id, client=taker, body=ClaimOffer(taker_payout_pubkey=taker_key)),
        200,
        ClaimedOffer,
        "claimOffer",
    )
    print(f"[taker] claimed; bond invoice for {claimed.bond.amount_sats} sats")
    bonded = wait_for(taker, offer_id, "TAKER_BOND_PAID")
    print(f"[taker] bond paid; pays the fiat to {bonded.payment_details}")

    upload = SubmitReceiptBody(
        image=File(payload=io.BytesIO(PNG), file_name="receipt.png", mime_type="image/png"),
        note="paid by the generated client",
    )
    receipted = ok(submit_receipt.sync_detailed(offer_id, client=taker, body=upload), 200, OfferView, "submitReceipt")
    print(f"[taker] receipt uploaded: {receipted.status}")
    completed = ok(complete_offer.sync_detailed(offer_id, client=maker), 200, OfferView, "completeOffer")
    print(f"[maker] confirmed the fiat arrived: {completed.status}")

    got_taker = redeem(taker_secret, released(taker, offer_id))
    got_maker = redeem(maker_secret, released(maker, offer_id))
    s, tf, tb, mb = funded.amount_sats, funded.taker_reward_sats, funded.taker_bond_sats, funded.maker_bond_sats
    print(f"[taker] redeemed {got_taker} sats (S {s} + reward {tf} + bond {tb})")
    print(f"[maker] redeemed {got_maker} sats (maker bond {mb})")
    if got_taker != s + tf + tb or got_maker != mb:
        sys.exit("payouts do not match the money table")
    print("generated-client trade complete: every sat where it belongs")


if __name__ == "__main__":
    main()
