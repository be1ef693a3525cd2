"""Everything that knows TLS: certificates, contexts, levels, policy, log phrasing."""
