"""The UI kit: what the web shop and the admin share, each concern once. Services never depend on it (see
libs/devstack/tests/test_layering.py); what every app shares lives in servicekit."""
