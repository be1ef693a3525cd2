"""The Postfix-compatible configuration: parameter table, main.cf, master.cf, lookup tables."""
