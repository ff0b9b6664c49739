"""Time-zone names in the phones' own notation, from the site's IANA zone.

- PLANET/Fanvil: `Time Zone` counts quarter hours east of UTC (UTC+1 is 4,
  UTC+8 is 32) and `Time Zone Name` is `UTC+1` style: the Fanvil X3U export
  in tests/data (`Time Zone :4`, `Time Zone Name :UTC+1`) and the table of
  Wazo's wazo_fanvil plugin (`serie_x/entry.py` `_TZ_INFO`: `('UTC+8', 32)`,
  `('UTC-05', -20)`, `('UCT', 0)`), which this follows for whole hours.
  Zones with half or quarter hours have no name in either source; they get
  `UTC+5:30` style (an assumption, said so in templates/SOURCES.md).
- Yealink: `local_time.time_zone` is the hour offset (`+1`) and
  `local_time.time_zone_name` one of Yealink's own names (`Germany(Berlin)`),
  from the time-zone table of Yealink's administrator guide (as quoted in
  provisioning code, templates/SOURCES.md). A zone missing from the table
  gets the first name Yealink lists for its standard offset.
"""

from __future__ import annotations


def fanvil_quarter_hours(offset_minutes: int) -> int:
    return offset_minutes // 15


def fanvil_zone_name(offset_minutes: int) -> str:
    if offset_minutes == 0:
        return "UCT"
    hours, minutes = divmod(abs(offset_minutes), 60)
    text = f"UTC+{hours}" if offset_minutes > 0 else f"UTC-{hours:02d}"
    return f"{text}:{minutes:02d}" if minutes else text


# IANA zone -> Yealink name (Yealink admin guide, "Time Zones" appendix).
YEALINK_NAMES: dict[str, str] = {
    "Pacific/Pago_Pago": "Samoa",
    "Pacific/Honolulu": "United States-Hawaii-Aleutian",
    "America/Anchorage": "United States-Alaska Time",
    "America/Vancouver": "Canada(Vancouver,Whitehorse)",
    "America/Tijuana": "Mexico(Tijuana,Mexicali)",
    "America/Los_Angeles": "United States-Pacific Time",
    "America/Edmonton": "Canada(Edmonton,Calgary)",
    "America/Denver": "United States-Mountain Time",
    "America/Phoenix": "United States-MST no DST",
    "America/Winnipeg": "Canada-Manitoba(Winnipeg)",
    "America/Mexico_City": "Mexico(Mexico City,Acapulco)",
    "America/Chicago": "United States-Central Time",
    "America/Nassau": "Bahamas(Nassau)",
    "America/Toronto": "Canada(Montreal,Ottawa,Quebec)",
    "America/Havana": "Cuba(Havana)",
    "America/New_York": "United States-Eastern Time",
    "America/Caracas": "Venezuela(Caracas)",
    "America/Halifax": "Canada(Halifax,Saint John)",
    "America/Santiago": "Chile(Santiago)",
    "America/Asuncion": "Paraguay(Asuncion)",
    "Atlantic/Bermuda": "United Kingdom-Bermuda(Bermuda)",
    "America/St_Johns": "Canada-New Foundland(St.Johns)",
    "America/Nuuk": "Denmark-Greenland(Nuuk)",
    "America/Argentina/Buenos_Aires": "Argentina(Buenos Aires)",
    "America/Sao_Paulo": "Brazil(no DST)",
    "Atlantic/Azores": "Portugal(Azores)",
    "Etc/UTC": "GMT",
    "UTC": "GMT",
    "Atlantic/Faroe": "Denmark-Faroe Islands(Torshavn)",
    "Europe/Dublin": "Ireland(Dublin)",
    "Europe/Lisbon": "Portugal(Lisboa,Porto,Funchal)",
    "Atlantic/Canary": "Spain-Canary Islands(Las Palmas)",
    "Europe/London": "United Kingdom(London)",
    "Africa/Casablanca": "Morocco",
    "Europe/Tirane": "Albania(Tirane)",
    "Europe/Vienna": "Austria(Vienna)",
    "Europe/Brussels": "Belgium(Brussels)",
    "Europe/Madrid": "Spain(Madrid)",
    "Europe/Zagreb": "Croatia(Zagreb)",
    "Europe/Prague": "Czech Republic(Prague)",
    "Europe/Copenhagen": "Denmark(Kopenhagen)",
    "Europe/Paris": "France(Paris)",
    "Europe/Berlin": "Germany(Berlin)",
    "Europe/Budapest": "Hungary(Budapest)",
    "Europe/Rome": "Italy(Rome)",
    "Europe/Luxembourg": "Luxembourg(Luxembourg)",
    "Europe/Skopje": "Macedonia(Skopje)",
    "Europe/Amsterdam": "Netherlands(Amsterdam)",
    "Africa/Windhoek": "Namibia(Windhoek)",
    "Europe/Tallinn": "Estonia(Tallinn)",
    "Europe/Helsinki": "Finland(Helsinki)",
    "Asia/Gaza": "Gaza Strip(Gaza)",
    "Europe/Athens": "Greece(Athens)",
    "Asia/Jerusalem": "Israel(Tel Aviv)",
    "Asia/Amman": "Jordan(Amman)",
    "Europe/Riga": "Latvia(Riga)",
    "Asia/Beirut": "Lebanon(Beirut)",
    "Europe/Chisinau": "Moldova(Kishinev)",
    "Europe/Kaliningrad": "Russia(Kaliningrad)",
    "Europe/Bucharest": "Romania(Bucharest)",
    "Asia/Damascus": "Syria(Damascus)",
    "Europe/Istanbul": "Turkey(Ankara)",
    "Europe/Kyiv": "Ukraine(Kyiv,Odessa)",
    "Europe/Kiev": "Ukraine(Kyiv,Odessa)",
    "Africa/Nairobi": "East Africa Time",
    "Asia/Baghdad": "Iraq(Baghdad)",
    "Europe/Moscow": "Russia(Moscow)",
    "Asia/Tehran": "Iran(Teheran)",
    "Asia/Yerevan": "Armenia(Yerevan)",
    "Asia/Baku": "Azerbaijan(Baku)",
    "Asia/Tbilisi": "Georgia(Tbilisi)",
    "Asia/Aqtau": "Kazakhstan(Aktau)",
    "Europe/Samara": "Russia(Samara)",
    "Asia/Kabul": "Afghanistan",
    "Asia/Aqtobe": "Kazakhstan(Aqtobe)",
    "Asia/Bishkek": "Kyrgyzstan(Bishkek)",
    "Asia/Karachi": "Pakistan(Islamabad)",
    "Asia/Yekaterinburg": "Russia(Chelyabinsk)",
    "Asia/Kolkata": "India(Calcutta)",
    "Asia/Almaty": "Kazakhstan(Astana,Almaty)",
    "Asia/Novosibirsk": "Russia(Novosibirsk,Omsk)",
    "Asia/Krasnoyarsk": "Russia(Krasnoyarsk)",
    "Asia/Bangkok": "Thailand(Bangkok)",
    "Asia/Shanghai": "China(Beijing)",
    "Asia/Singapore": "Singapore(Singapore)",
    "Australia/Perth": "Australia(Perth)",
    "Asia/Seoul": "Korea(Seoul)",
    "Asia/Tokyo": "Japan(Tokyo)",
    "Australia/Adelaide": "Australia(Adelaide)",
    "Australia/Darwin": "Australia(Darwin)",
    "Australia/Sydney": "Australia(Sydney,Melbourne,Canberra)",
    "Australia/Melbourne": "Australia(Sydney,Melbourne,Canberra)",
    "Australia/Brisbane": "Australia(Brisbane)",
    "Australia/Hobart": "Australia(Hobart)",
    "Asia/Vladivostok": "Russia(Vladivostok)",
    "Australia/Lord_Howe": "Australia(Lord Howe Islands)",
    "Pacific/Noumea": "New Caledonia(Noumea)",
    "Pacific/Auckland": "New Zealand(Wellington,Auckland)",
    "Pacific/Chatham": "New Zealand(Chatham Islands)",
}

# Standard offset (minutes) -> the first name Yealink lists for it.
_BY_OFFSET: dict[int, str] = {
    -660: "Samoa",
    -600: "United States-Hawaii-Aleutian",
    -540: "United States-Alaska Time",
    -480: "United States-Pacific Time",
    -420: "United States-Mountain Time",
    -360: "United States-Central Time",
    -300: "United States-Eastern Time",
    -270: "Venezuela(Caracas)",
    -240: "Canada(Halifax,Saint John)",
    -210: "Canada-New Foundland(St.Johns)",
    -180: "Argentina(Buenos Aires)",
    -60: "Portugal(Azores)",
    0: "GMT",
    60: "Germany(Berlin)",
    120: "Greece(Athens)",
    180: "Russia(Moscow)",
    210: "Iran(Teheran)",
    240: "Georgia(Tbilisi)",
    270: "Afghanistan",
    300: "Pakistan(Islamabad)",
    330: "India(Calcutta)",
    360: "Kazakhstan(Astana,Almaty)",
    420: "Thailand(Bangkok)",
    480: "China(Beijing)",
    540: "Japan(Tokyo)",
    570: "Australia(Adelaide)",
    600: "Australia(Sydney,Melbourne,Canberra)",
    630: "Australia(Lord Howe Islands)",
    660: "New Caledonia(Noumea)",
    720: "New Zealand(Wellington,Auckland)",
    765: "New Zealand(Chatham Islands)",
}


def yealink_zone_name(zone: str, offset_minutes: int) -> str:
    """Yealink's name for `zone`, "" when Yealink has none for its offset."""
    return YEALINK_NAMES.get(zone) or _BY_OFFSET.get(offset_minutes, "")
