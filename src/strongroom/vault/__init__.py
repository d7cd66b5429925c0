"""Vault-compatible key API: token auth, KV v2 reads of versioned keys, transit.

``records`` holds tokens, mounts and sealed KV versions; ``service`` answers Vault's JSON
shapes over the key service; ``http`` is the HTTPS listener behind ``strongroom vault``;
``runtime`` wires it to a key service in this process.
"""
