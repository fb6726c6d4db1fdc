#!/usr/bin/env python3
"""How much of an OpenAPI document's links schemathesis's stateful phase followed.

Usage: contract_links.py DOCUMENT NDJSON

DOCUMENT is openapi.yaml or openapi-admin.yaml; NDJSON is the events report of a
`schemathesis run --phases stateful` against it. A link counts as exercised when a request
went along it (schemathesis filled the target's parameters from the source's response),
whatever the target answered; links whose target answered 2xx are counted separately, since
some cannot succeed for one session (it cannot claim its own offer) or at once (invoices are
paid asynchronously). Prints one line; with CONTRACT_REQUIRE_LINKS=1 exits 1 when a link of
the document was never exercised.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter

import yaml

METHODS = ("get", "put", "post", "delete", "patch")


def document_links(path: str) -> set[str]:
    """Every link as schemathesis names a transition: `SOURCE -> [STATUS] NAME -> TARGET`."""
    doc = yaml.safe_load(open(path))
    label = {}
    for p, item in doc["paths"].items():
        for m, op in item.items():
            if m in METHODS:
                label[op["operationId"]] = f"{m.upper()} {p}"
    links = set()
    for p, item in doc["paths"].items():
        for m, op in item.items():
            if m not in METHODS:
                continue
            for status, response in op["responses"].items():
                for name, link in (response.get("links") or {}).items():
                    links.add(f"{m.upper()} {p} -> [{status}] {name} -> {label[link['operationId']]}")
    return links


def main() -> int:
    doc, report = sys.argv[1], sys.argv[2]
    links = document_links(doc)
    exercised: Counter[str] = Counter()
    succeeded: Counter[str] = Counter()
    scenarios = sequences = 0
    with open(report) as f:
        for line in f:
            event = json.loads(line).get("ScenarioFinished")
            if not event or event.get("phase") != "stateful" or event.get("is_final"):
                continue
            # As schemathesis counts scenarios: not the skipped or interrupted ones.
            if event.get("status") in (None, "skip", "interrupted"):
                continue
            recorder = event["recorder"]
            scenarios += 1
            chained = False
            for case_id, case in recorder.get("cases", {}).items():
                transition = case.get("transition")
                if not transition or not case.get("is_transition_applied"):
                    continue
                chained = True
                exercised[transition["id"]] += 1
                response = (recorder.get("interactions", {}).get(case_id) or {}).get("response") or {}
                if 200 <= response.get("status_code", 0) < 300:
                    succeeded[transition["id"]] += 1
            sequences += chained
    missing = sorted(links - set(exercised))
    ok2xx = sum(1 for link in links if succeeded[link])
    line = (
        f"{scenarios} scenarios, {sequences} multi-step sequences; links exercised "
        f"{len(links) - len(missing)}/{len(links)} ({ok2xx} with a 2xx)"
    )
    if missing:
        line += "; never followed: " + ", ".join(" ".join(m.split(" -> ")[:2]) for m in missing)
    print(line)
    return 1 if missing and os.environ.get("CONTRACT_REQUIRE_LINKS") == "1" else 0


if __name__ == "__main__":
    sys.exit(main())
