"""Scale-out: hash-sharded indexes built on Ray Data and searched through one router (Ray Serve or in-process).

Each shard is a complete scimatch index folder (catalog, lexical, vector) that ``Engine`` opens on its own;
the router fans a query out, gathers each shard's per-mode candidate lists and fuses them once with the
single engine's fusion code. Nothing here is imported by the single-machine path: ``ray`` is loaded only
by the modules that need it (``ray_index``, ``writer``, ``serve_app``, ``cluster``).
"""
