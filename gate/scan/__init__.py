"""Scanning: camera frames in, QR codes out (decoders, idle-frame skip, second chance)."""
