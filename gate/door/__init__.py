"""The door: relay pulse, pins, inputs, door monitor and alarms, indicators."""
