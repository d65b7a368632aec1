"""Invoice documents (SPEC §12): HTML and PDF in the customer's language, and EN 16931
e-invoices (CII, UBL, Factur-X), all made from an `InvoiceDocument`, the invoice or
credit note exactly as issued. Pure: no database, no clock, no network.
"""
