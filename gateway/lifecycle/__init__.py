"""Covenant lifecycle: early revocation, mandate withdrawal, legal holds, rehearsal, and their facts.

`model` holds the pure facts the policy decision reads (through `CompiledPolicy.with_lifecycle`);
`repository` stores them; `service` is the jurist's actions; `holder` keeps every gateway process on
the current effective policy; `facts` hands the evidence documents what they state.
"""
