"""Test support shared by the kit's tests and every rendered collab's: fakes at the Hub boundary."""
