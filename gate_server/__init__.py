"""gate-server: the central server for QR door gates (enrol, issue, revoke, watch).

Installed only with the `server` extra; the gate daemon (`gate/`) never imports it.
"""
