"""The demo's brokered source: Amsterdam's client tracking system (CVS), simulated on loopback.

`gateway demo init` registers the demo participants while the simulator runs, so Amsterdam's case
plans are written to the CVS (not the hosted store), then keeps what the CVS holds in a file;
`gateway serve` in demo mode starts the simulator again with that file and points the gateway's
`cvs-amsterdam` connector at it.
"""

from __future__ import annotations

import json
from pathlib import Path

from gateway.connectors.client_auth import connector_key, public_jwks
from gateway.connectors.simulators import SourceSystemSim, city_cvs
from gateway.settings import Settings

DEMO_CVS_FILE = Path("var/demo-cvs.json")
SOURCE = "cvs-amsterdam"


def start_cvs(settings: Settings, records: Path | None = None) -> tuple[SourceSystemSim, Settings]:
    """Start the simulated CVS (holding `records` when given); return it and the settings pointing at it."""
    sim = city_cvs(public_jwks(connector_key(settings.key_dir)))
    if records is not None and records.exists():
        sim.state.records = json.loads(records.read_text())
    sim.__enter__()
    urls = {**settings.connector_urls, SOURCE: sim.url}
    return sim, settings.model_copy(update={"connector_urls": urls})


def keep(sim: SourceSystemSim, path: Path = DEMO_CVS_FILE) -> None:
    """Write what the simulated CVS holds (synthetic), for the next `gateway serve`."""
    path.write_text(json.dumps(sim.state.records, indent=1))


def example(port: int, sim_url: str, pseudonym: str) -> str:
    """Return the printed example of a brokered read."""
    base = f"http://127.0.0.1:{port}/v1/participants"
    h = '-H "Authorization: Bearer $TOKEN" -H "Acting-User: demo.user"'
    return f"""
  # 4. A brokered read: Amsterdam's case plan is not stored in the gateway; it lives in the city's
  #    client tracking system (a simulator at {sim_url}). The gateway decides and logs first, then
  #    asks the CVS for the permitted fields only, and cuts the answer again (shelter counselling: phase).
  TOKEN=$(.venv/bin/gateway demo token --org amsterdam)
  curl -s {base}/{pseudonym} {h} -H "Acting-Role: case_manager" \\
       -H "Processing-Purpose: shelter_counselling" | python3 -m json.tool
  # The audit entry names the source it permitted the call to ("brokered_from"); the CVS received
  # the purpose, the trace and that entry's id (LDV-Audit-Entry) to log its own side.
"""
