"""The catalog `GET /rest/v1/activities/types.json` answers: Marketo's standard activity types.

Ids, names, primary attributes and attribute data types as a standard Marketo subscription
lists them (custom activity types, ids 100000 and up, are not simulated).
"""

from __future__ import annotations

_WEB = [("Client IP Address", "string"), ("Query Parameters", "string")]
_WEB += [("Referrer URL", "string"), ("User Agent", "string")]
_EMAIL = [("Campaign Run ID", "integer"), ("Choice Number", "integer"), ("Step ID", "integer")]
_DEVICE = [("Device", "string"), ("Is Mobile Device", "boolean"), ("Platform", "string")]
_CHANGE = [("New Value", "string"), ("Old Value", "string"), ("Reason", "string")]
_CHANGE += [("Source", "string"), ("API Method Name", "string"), ("Modifying User", "string")]

# id, name, description, primary attribute (name, dataType), attributes
# fmt: off
TYPES: list[tuple[int, str, str, tuple[str, str], list[tuple[str, str]]]] = [
    (1, "Visit Webpage", "User visits a web page", ("Webpage ID", "integer"),
     [*_WEB, ("Search Engine", "string"), ("Search Query", "string"), ("Webpage URL", "string")]),
    (2, "Fill Out Form", "User fills out and submits form on web page", ("Webform ID", "integer"),
     [*_WEB, ("Form Fields", "text"), ("Webpage ID", "integer")]),
    (3, "Click Link", "User clicks link on a page", ("Link ID", "integer"),
     [*_WEB, ("Webpage ID", "integer")]),
    (6, "Send Email", "Send Marketo Email to a person", ("Mailing ID", "integer"), _EMAIL),
    (7, "Email Delivered", "Marketo Email is delivered to a person", ("Mailing ID", "integer"),
     _EMAIL),
    (8, "Email Bounced", "Marketo Email bounces for a person", ("Mailing ID", "integer"),
     [*_EMAIL, ("Category", "string"), ("Details", "string"), ("Email", "email"),
      ("Subcategory", "string")]),
    (9, "Unsubscribe Email", "Person unsubscribes from Marketo Emails", ("Mailing ID", "integer"),
     [*_WEB, ("Campaign Run ID", "integer"), ("Form Fields", "text"), ("Webform ID", "integer"),
      ("Webpage ID", "integer")]),
    (10, "Open Email", "User opens Marketo Email", ("Mailing ID", "integer"),
     [*_EMAIL, *_DEVICE, ("User Agent", "string")]),
    (11, "Click Email", "User clicks on a link in a Marketo Email", ("Mailing ID", "integer"),
     [*_EMAIL, *_DEVICE, ("Link", "string"), ("User Agent", "string")]),
    (12, "New Lead", "New person/record is added to the lead database", ("Lead ID", "integer"),
     [("Created Date", "date"), ("Form Name", "string"), ("Lead Source", "string"),
      ("List Name", "string"), ("SFDC Type", "string"), ("API Method Name", "string"),
      ("Modifying User", "string")]),
    (13, "Change Data Value", "Changed attribute value for a person", ("Attribute Name", "integer"),
     _CHANGE),
    (22, "Change Score", "Changed score value for a person", ("Score Name", "integer"),
     [("Change Value", "string"), ("New Value", "integer"), ("Old Value", "integer"),
      ("Reason", "string")]),
    (24, "Add to List", "Person is added to a list", ("List ID", "integer"),
     [("Source", "string"), ("API Method Name", "string"), ("Modifying User", "string")]),
    (25, "Remove from List", "Person is removed from a list", ("List ID", "integer"),
     [("Source", "string"), ("API Method Name", "string"), ("Modifying User", "string")]),
    (32, "Merge Leads", "Merge two or more person records", ("Lead ID", "integer"),
     [("Merge IDs", "text"), ("Merge Source", "string"), ("Merged in Sales", "boolean"),
      ("Master Updated", "boolean")]),
    (37, "Delete Lead", "Delete a person from the lead database", ("Lead ID", "integer"),
     [("Remove from CRM", "boolean"), ("API Method Name", "string"),
      ("Modifying User", "string")]),
    (46, "Interesting Moment", "Interesting moment for a person", ("Milestone ID", "integer"),
     [("Date", "datetime"), ("Description", "string"), ("Source", "string"),
      ("Type", "string")]),
    (104, "Change Status in Progression", "Change a person's status in a program",
     ("Program ID", "integer"),
     [("Acquired By", "boolean"), ("New Status ID", "integer"), ("Old Status ID", "integer"),
      ("New Status", "string"), ("Old Status", "string"), ("Program Member ID", "integer"),
      ("Reason", "string"), ("Success", "boolean")]),
]
# fmt: on


def _api_name(name: str) -> str:
    words = name.replace("ID", "Id").split()
    return words[0].lower() + "".join(w[:1].upper() + w[1:] for w in words[1:])


def _attribute(name: str, data_type: str) -> dict:
    return {"name": name, "apiName": _api_name(name), "dataType": data_type}


def activity_types() -> list[dict]:
    return [
        {
            "id": type_id,
            "name": name,
            "apiName": _api_name(name),
            "description": description,
            "primaryAttribute": _attribute(*primary),
            "attributes": [_attribute(*a) for a in attributes],
        }
        for type_id, name, description, primary, attributes in TYPES
    ]
