"""The dashboard's routers, one module per audience or protocol."""
