"""The fleet side of a gate: MQTT (Home Assistant discovery, states, remote commands)."""
