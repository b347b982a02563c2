"""gate: a QR-code door gate controller (camera -> decoder -> verifier -> relay -> journal)."""

__version__ = "0.1.0"
