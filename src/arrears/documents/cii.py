"""UN/CEFACT Cross Industry Invoice (D16B), the Factur-X / ZUGFeRD EN 16931 profile.

Elements are written in the order the CII schema's sequences require.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lxml import etree

from arrears.documents.en16931 import (
    SemanticDocument,
    SemanticLine,
    decimal_text,
    semantic_document,
    xml_text,
)
from arrears.documents.model import Address, InvoiceDocument, Party

__all__ = ["GUIDELINE", "cii_xml"]

GUIDELINE = "urn:cen.eu:en16931:2017"
_RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
_UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
_QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
_NSMAP = {"rsm": _RSM, "ram": _RAM, "udt": _UDT, "qdt": _QDT}


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    prefix, name = tag.split(":")
    element = etree.SubElement(parent, f"{{{_NSMAP[prefix]}}}{name}", attrs)
    if text is not None:
        element.text = xml_text(text)
    return element


def _date(parent: etree._Element, tag: str, value: date, kind: str = "udt") -> None:
    _el(_el(parent, tag), f"{kind}:DateTimeString", value.strftime("%Y%m%d"), format="102")


def _amount(value: Decimal) -> str:
    return format(value, "f")


def cii_xml(document: InvoiceDocument) -> bytes:
    """The CII XML of `document` (UTF-8); `MissingDocumentData` if a party lacks what
    EN 16931 requires. The same document always gives the same bytes."""
    semantic = semantic_document(document)
    root = etree.Element(f"{{{_RSM}}}CrossIndustryInvoice", nsmap=_NSMAP)
    context = _el(root, "rsm:ExchangedDocumentContext")
    _el(_el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", GUIDELINE)
    header = _el(root, "rsm:ExchangedDocument")
    _el(header, "ram:ID", document.number)
    _el(header, "ram:TypeCode", document.kind.type_code)
    _date(header, "ram:IssueDateTime", document.issue_date)
    for note in (document.reason, *document.notes):
        if note:
            _el(_el(header, "ram:IncludedNote"), "ram:Content", note)
    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    for line in semantic.lines:
        _line(transaction, semantic, line)
    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    if document.customer_reference:
        _el(agreement, "ram:BuyerReference", document.customer_reference)
    _party(_el(agreement, "ram:SellerTradeParty"), document.seller)
    _party(_el(agreement, "ram:BuyerTradeParty"), document.customer)
    _el(transaction, "ram:ApplicableHeaderTradeDelivery")
    _settlement(_el(transaction, "ram:ApplicableHeaderTradeSettlement"), semantic)
    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return xml


def _line(transaction: etree._Element, semantic: SemanticDocument, line: SemanticLine) -> None:
    item = _el(transaction, "ram:IncludedSupplyChainTradeLineItem")
    associated = _el(item, "ram:AssociatedDocumentLineDocument")
    _el(associated, "ram:LineID", line.line_id)
    if line.note:
        _el(_el(associated, "ram:IncludedNote"), "ram:Content", line.note)
    _el(_el(item, "ram:SpecifiedTradeProduct"), "ram:Name", line.name)
    agreement = _el(item, "ram:SpecifiedLineTradeAgreement")
    _el(
        _el(agreement, "ram:NetPriceProductTradePrice"),
        "ram:ChargeAmount",
        decimal_text(line.net_price),
    )
    delivery = _el(item, "ram:SpecifiedLineTradeDelivery")
    _el(delivery, "ram:BilledQuantity", decimal_text(line.quantity), unitCode="C62")
    settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
    _tax_category(_el(settlement, "ram:ApplicableTradeTax"), semantic)
    summation = _el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
    _el(summation, "ram:LineTotalAmount", _amount(line.net_amount))


def _tax_category(tax: etree._Element, semantic: SemanticDocument) -> None:
    _el(tax, "ram:TypeCode", "VAT")
    _el(tax, "ram:CategoryCode", semantic.category)
    _el(tax, "ram:RateApplicablePercent", decimal_text(semantic.document.tax_rate))


def _party(element: etree._Element, party: Party) -> None:
    _el(element, "ram:Name", party.name)
    if party.phone or party.email:
        contact = _el(element, "ram:DefinedTradeContact")
        if party.phone:
            _el(
                _el(contact, "ram:TelephoneUniversalCommunication"),
                "ram:CompleteNumber",
                party.phone,
            )
        if party.email:
            _el(_el(contact, "ram:EmailURIUniversalCommunication"), "ram:URIID", party.email)
    assert party.address is not None  # noqa: S101 (semantic_document checked it)
    _address(_el(element, "ram:PostalTradeAddress"), party.address)
    if party.vat_id:
        _el(_el(element, "ram:SpecifiedTaxRegistration"), "ram:ID", party.vat_id, schemeID="VA")
    if party.tax_number:
        registration = _el(element, "ram:SpecifiedTaxRegistration")
        _el(registration, "ram:ID", party.tax_number, schemeID="FC")


def _address(element: etree._Element, address: Address) -> None:
    if address.postal_code:
        _el(element, "ram:PostcodeCode", address.postal_code)
    _el(element, "ram:LineOne", address.line1)
    if address.line2:
        _el(element, "ram:LineTwo", address.line2)
    _el(element, "ram:CityName", address.city)
    _el(element, "ram:CountryID", address.country)
    if address.region:
        _el(element, "ram:CountrySubDivisionName", address.region)


def _settlement(settlement: etree._Element, semantic: SemanticDocument) -> None:
    document = semantic.document
    _el(settlement, "ram:PaymentReference", document.number)
    _el(settlement, "ram:InvoiceCurrencyCode", document.currency)
    bank = document.seller.bank_account
    if bank is not None:
        means = _el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
        _el(means, "ram:TypeCode", "58")  # SEPA credit transfer
        account = _el(means, "ram:PayeePartyCreditorFinancialAccount")
        _el(account, "ram:IBANID", bank.iban)
        if bank.account_holder:
            _el(account, "ram:AccountName", bank.account_holder)
        if bank.bic:
            institution = _el(means, "ram:PayeeSpecifiedCreditorFinancialInstitution")
            _el(institution, "ram:BICID", bank.bic)
    tax = _el(settlement, "ram:ApplicableTradeTax")
    _el(tax, "ram:CalculatedAmount", _amount(semantic.tax_amount))
    _el(tax, "ram:TypeCode", "VAT")
    _el(tax, "ram:BasisAmount", _amount(semantic.tax_basis))
    _el(tax, "ram:CategoryCode", semantic.category)
    _el(tax, "ram:RateApplicablePercent", decimal_text(document.tax_rate))
    if document.period_start is not None and document.period_end is not None:
        period = _el(settlement, "ram:BillingSpecifiedPeriod")
        _date(period, "ram:StartDateTime", document.period_start)
        _date(period, "ram:EndDateTime", document.period_end)
    for allowance in semantic.allowances:
        charge = _el(settlement, "ram:SpecifiedTradeAllowanceCharge")
        _el(_el(charge, "ram:ChargeIndicator"), "udt:Indicator", "false")
        _el(charge, "ram:ActualAmount", _amount(allowance.amount))
        _el(charge, "ram:Reason", allowance.reason)
        _tax_category(_el(charge, "ram:CategoryTradeTax"), semantic)
    if semantic.payment_terms is not None or document.due_date is not None:
        terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
        if semantic.payment_terms is not None:
            _el(terms, "ram:Description", semantic.payment_terms)
        if document.due_date is not None:
            _date(terms, "ram:DueDateDateTime", document.due_date)
    _summation(_el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation"), semantic)
    if document.preceding_invoice is not None:
        referenced = _el(settlement, "ram:InvoiceReferencedDocument")
        _el(referenced, "ram:IssuerAssignedID", document.preceding_invoice.number)
        _date(
            referenced,
            "ram:FormattedIssueDateTime",
            document.preceding_invoice.issue_date,
            kind="qdt",
        )


def _summation(summation: etree._Element, semantic: SemanticDocument) -> None:
    _el(summation, "ram:LineTotalAmount", _amount(semantic.line_total))
    if semantic.allowances:
        _el(summation, "ram:AllowanceTotalAmount", _amount(semantic.allowance_total))
    _el(summation, "ram:TaxBasisTotalAmount", _amount(semantic.tax_basis))
    _el(
        summation,
        "ram:TaxTotalAmount",
        _amount(semantic.tax_amount),
        currencyID=semantic.document.currency,
    )
    _el(summation, "ram:GrandTotalAmount", _amount(semantic.grand_total))
    if semantic.prepaid:
        _el(summation, "ram:TotalPrepaidAmount", _amount(semantic.prepaid))
    _el(summation, "ram:DuePayableAmount", _amount(semantic.due))
