"""The review queue: everything an admin reviews, one list, with its evidence."""
