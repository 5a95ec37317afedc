"""tcpplay: a terminal playground where you watch TCP work."""
