"""Volumes encrypted per customer: LUKS2 whose passphrase a tenant's KMS key wraps.

A Strongroom keyslot's passphrase is a 256-bit data key from the KMS, kept in the LUKS2
header as a ``strongroom`` token (:mod:`.token`) wrapped under an encryption context
naming the volume's UUID and tenant. :mod:`.lifecycle` formats, binds, rewraps and shreds;
:mod:`.recover` unwraps, checks and opens; :mod:`.header` reads LUKS2 headers;
:mod:`.cryptsetup` writes them; :mod:`.kms` and :mod:`.aws_json` talk to the AWS KMS API;
:mod:`.jwe` and :mod:`.pin` are the Clevis pin. The command line is ``strongroom volume``
(:mod:`strongroom.cli.volume`). Modules are imported on use, not here: ``volume pass``
starts fast.
"""
