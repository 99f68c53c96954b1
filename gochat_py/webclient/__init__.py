"""The browser chat client's files (static/), served by rest/webclient.py."""
