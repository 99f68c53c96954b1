"""What the server does, whichever door a request came through: accounts, sending, history."""
