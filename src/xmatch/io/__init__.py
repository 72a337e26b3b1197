"""Tables in and out: the one reader of users' tables, and the writers of results."""
