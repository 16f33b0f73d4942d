"""Built-in echo implementations and the table that lists them."""
