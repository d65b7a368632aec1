"""UBL 2.1 Invoice and CreditNote as Peppol BIS Billing 3.0 writes them.

Elements are written in the order the UBL schema's sequences require.
"""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from arrears.documents.en16931 import (
    SemanticDocument,
    SemanticLine,
    decimal_text,
    semantic_document,
    xml_text,
)
from arrears.documents.model import Address, DocumentKind, InvoiceDocument, Party

__all__ = ["CUSTOMIZATION", "PROFILE", "ubl_xml"]

CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
_ROOTS = {
    DocumentKind.INVOICE: "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    DocumentKind.CREDIT_NOTE: "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
}
_NSMAP = {"cac": _CAC, "cbc": _CBC}


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    prefix, name = tag.split(":")
    element = etree.SubElement(parent, f"{{{_NSMAP[prefix]}}}{name}", attrs)
    if text is not None:
        element.text = xml_text(text)
    return element


def ubl_xml(document: InvoiceDocument) -> bytes:
    """The UBL XML of `document` (an `Invoice`, or a `CreditNote` for a credit note);
    `MissingDocumentData` if a party lacks what EN 16931 requires."""
    semantic = semantic_document(document)
    invoice = document.kind is DocumentKind.INVOICE
    root_name = "Invoice" if invoice else "CreditNote"
    namespace = _ROOTS[document.kind]
    nsmap: dict[str | None, str] = {None: namespace, "cac": _CAC, "cbc": _CBC}
    root = etree.Element(f"{{{namespace}}}{root_name}", nsmap=nsmap)
    _el(root, "cbc:CustomizationID", CUSTOMIZATION)
    _el(root, "cbc:ProfileID", PROFILE)
    _el(root, "cbc:ID", document.number)
    _el(root, "cbc:IssueDate", document.issue_date.isoformat())
    if invoice and document.due_date is not None:
        _el(root, "cbc:DueDate", document.due_date.isoformat())
    _el(root, f"cbc:{root_name}TypeCode", document.kind.type_code)
    for note in (document.reason, *document.notes):
        if note:
            _el(root, "cbc:Note", note)
    _el(root, "cbc:DocumentCurrencyCode", document.currency)
    if document.customer_reference:
        _el(root, "cbc:BuyerReference", document.customer_reference)
    if document.period_start is not None and document.period_end is not None:
        period = _el(root, "cac:InvoicePeriod")
        _el(period, "cbc:StartDate", document.period_start.isoformat())
        _el(period, "cbc:EndDate", document.period_end.isoformat())
    if document.preceding_invoice is not None:
        reference = _el(_el(root, "cac:BillingReference"), "cac:InvoiceDocumentReference")
        _el(reference, "cbc:ID", document.preceding_invoice.number)
        _el(reference, "cbc:IssueDate", document.preceding_invoice.issue_date.isoformat())
    _party(_el(root, "cac:AccountingSupplierParty"), document.seller)
    _party(_el(root, "cac:AccountingCustomerParty"), document.customer)
    _payment(root, semantic)
    for allowance in semantic.allowances:
        charge = _el(root, "cac:AllowanceCharge")
        _el(charge, "cbc:ChargeIndicator", "false")
        _el(charge, "cbc:AllowanceChargeReason", allowance.reason)
        _money(charge, "cbc:Amount", allowance.amount, document)
        _tax_category(charge, "cac:TaxCategory", semantic)
    _tax_total(root, semantic)
    _monetary_total(_el(root, "cac:LegalMonetaryTotal"), semantic)
    for line in semantic.lines:
        _line(root, root_name, semantic, line)
    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return xml


def _money(parent: etree._Element, tag: str, value: Decimal, document: InvoiceDocument) -> None:
    _el(parent, tag, format(value, "f"), currencyID=document.currency)


def _tax_category(parent: etree._Element, tag: str, semantic: SemanticDocument) -> None:
    category = _el(parent, tag)
    _el(category, "cbc:ID", semantic.category)
    _el(category, "cbc:Percent", decimal_text(semantic.document.tax_rate))
    _el(_el(category, "cac:TaxScheme"), "cbc:ID", "VAT")


def _party(role: etree._Element, party: Party) -> None:
    element = _el(role, "cac:Party")
    _el(_el(element, "cac:PartyName"), "cbc:Name", party.name)
    assert party.address is not None  # noqa: S101 (semantic_document checked it)
    _address(_el(element, "cac:PostalAddress"), party.address)
    if party.vat_id:
        scheme = _el(element, "cac:PartyTaxScheme")
        _el(scheme, "cbc:CompanyID", party.vat_id)
        _el(_el(scheme, "cac:TaxScheme"), "cbc:ID", "VAT")
    if party.tax_number:
        scheme = _el(element, "cac:PartyTaxScheme")
        _el(scheme, "cbc:CompanyID", party.tax_number)
        _el(_el(scheme, "cac:TaxScheme"), "cbc:ID", "TAX")
    _el(_el(element, "cac:PartyLegalEntity"), "cbc:RegistrationName", party.name)
    if party.phone or party.email:
        contact = _el(element, "cac:Contact")
        if party.phone:
            _el(contact, "cbc:Telephone", party.phone)
        if party.email:
            _el(contact, "cbc:ElectronicMail", party.email)


def _address(element: etree._Element, address: Address) -> None:
    _el(element, "cbc:StreetName", address.line1)
    if address.line2:
        _el(element, "cbc:AdditionalStreetName", address.line2)
    _el(element, "cbc:CityName", address.city)
    if address.postal_code:
        _el(element, "cbc:PostalZone", address.postal_code)
    if address.region:
        _el(element, "cbc:CountrySubentity", address.region)
    _el(_el(element, "cac:Country"), "cbc:IdentificationCode", address.country)


def _payment(root: etree._Element, semantic: SemanticDocument) -> None:
    document = semantic.document
    bank = document.seller.bank_account
    if bank is not None:
        means = _el(root, "cac:PaymentMeans")
        _el(means, "cbc:PaymentMeansCode", "58")  # SEPA credit transfer
        _el(means, "cbc:PaymentID", document.number)
        account = _el(means, "cac:PayeeFinancialAccount")
        _el(account, "cbc:ID", bank.iban)
        if bank.account_holder:
            _el(account, "cbc:Name", bank.account_holder)
        if bank.bic:
            _el(_el(account, "cac:FinancialInstitutionBranch"), "cbc:ID", bank.bic)
    if semantic.payment_terms is not None:
        _el(_el(root, "cac:PaymentTerms"), "cbc:Note", semantic.payment_terms)


def _tax_total(root: etree._Element, semantic: SemanticDocument) -> None:
    document = semantic.document
    total = _el(root, "cac:TaxTotal")
    _money(total, "cbc:TaxAmount", semantic.tax_amount, document)
    subtotal = _el(total, "cac:TaxSubtotal")
    _money(subtotal, "cbc:TaxableAmount", semantic.tax_basis, document)
    _money(subtotal, "cbc:TaxAmount", semantic.tax_amount, document)
    _tax_category(subtotal, "cac:TaxCategory", semantic)


def _monetary_total(total: etree._Element, semantic: SemanticDocument) -> None:
    document = semantic.document
    _money(total, "cbc:LineExtensionAmount", semantic.line_total, document)
    _money(total, "cbc:TaxExclusiveAmount", semantic.tax_basis, document)
    _money(total, "cbc:TaxInclusiveAmount", semantic.grand_total, document)
    if semantic.allowances:
        _money(total, "cbc:AllowanceTotalAmount", semantic.allowance_total, document)
    if semantic.prepaid:
        _money(total, "cbc:PrepaidAmount", semantic.prepaid, document)
    _money(total, "cbc:PayableAmount", semantic.due, document)


def _line(
    root: etree._Element, root_name: str, semantic: SemanticDocument, line: SemanticLine
) -> None:
    document = semantic.document
    element = _el(root, f"cac:{root_name}Line")
    _el(element, "cbc:ID", line.line_id)
    if line.note:
        _el(element, "cbc:Note", line.note)
    quantity_tag = "cbc:InvoicedQuantity" if root_name == "Invoice" else "cbc:CreditedQuantity"
    _el(element, quantity_tag, decimal_text(line.quantity), unitCode="C62")
    _money(element, "cbc:LineExtensionAmount", line.net_amount, document)
    item = _el(element, "cac:Item")
    _el(item, "cbc:Name", line.name)
    _tax_category(item, "cac:ClassifiedTaxCategory", semantic)
    price = _el(element, "cac:Price")
    _el(price, "cbc:PriceAmount", decimal_text(line.net_price), currencyID=document.currency)
