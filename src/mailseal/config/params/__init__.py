"""The parameter table, one module per family; ``mailseal.config.model.Config`` joins them."""
