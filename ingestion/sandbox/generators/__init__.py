"""Qobrix-shaped records for every entity, each a pure function of (seed, entity, index, stamp).

Nothing is stored: a sandbox of 1,000,000 properties needs no more memory than one of
1,000. References are computed forward from indices (a property's agent, seller,
project, location), so every reference points at a record that exists. One module per
family of entities; `registry.Generator` maps each entity to the builder of its records.
"""
