"""The Postfix facade: the VirtualMTA store compiled into a Postfix configuration (`render`),
installed into a running Postfix (`install`), and relay servers probed over SMTP (`probe`).

A third consumer of the core beside the two APIs: it reads the same models and resolves
delivery with relays.resolution; it writes nothing to the store.
"""
