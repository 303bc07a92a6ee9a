"""Clients of the external systems (ServiceNow first; CVR, Kvantum, OPUS, eIndkomst and Graph follow)."""
