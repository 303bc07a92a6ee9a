"""The local host: runs the app on Azurite with the external-system simulators. Never deployed."""
