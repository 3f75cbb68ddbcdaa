"""The hub network parcelflow models: hubs (IATA codes) and the cities trucks serve."""

from __future__ import annotations

from dataclasses import dataclass

HUBS: tuple[str, ...] = ("LGG", "HGH", "KUL", "DXB", "SVO")
"""Liège (European gateway), Hangzhou (origin), Kuala Lumpur, Dubai, Moscow."""


@dataclass(frozen=True, slots=True)
class City:
    """A destination served by trucks from one hub; ``weight`` is its relative share of parcels."""

    code: str
    name: str
    country: str
    hub: str
    road_km: int
    weight: float


def _cities(hub: str, rows: str) -> tuple[City, ...]:
    """Parse ``CODE Name(with_underscores) CC km weight`` rows, one per line."""
    cities = []
    for row in rows.strip().splitlines():
        code, name, country, road_km, weight = row.split()
        cities.append(City(code, name.replace("_", " "), country, hub, int(road_km), float(weight)))
    return tuple(cities)


# Road distances are approximate driving distances from the hub; weights roughly follow the size
# of the metropolitan area (the e-commerce demand it generates).
CITIES: tuple[City, ...] = (
    *_cities(
        "LGG",
        """
        MST Maastricht NL 35 0.4
        CRL Charleroi BE 95 0.5
        BRU Brussels BE 100 2.1
        EIN Eindhoven NL 110 0.8
        CGN Cologne DE 120 2.0
        ANR Antwerp BE 125 1.1
        DUS Düsseldorf DE 145 1.5
        GNE Ghent BE 160 0.6
        LUX Luxembourg LU 160 0.6
        DTM Dortmund DE 190 1.6
        LIL Lille FR 210 1.2
        RTM Rotterdam NL 220 1.8
        AMS Amsterdam NL 240 2.5
        MHG Mannheim DE 300 1.0
        FRA Frankfurt DE 320 2.3
        PAR Paris FR 370 8.0
        HAJ Hanover DE 380 1.1
        BRE Bremen DE 390 0.9
        SXB Strasbourg FR 400 0.8
        STR Stuttgart DE 430 1.9
        HAM Hamburg DE 500 2.5
        LON London GB 500 7.0
        BSL Basel CH 520 0.5
        NUE Nuremberg DE 520 1.2
        LEJ Leipzig DE 550 1.0
        ZRH Zurich CH 570 1.4
        MUC Munich DE 640 2.8
        BER Berlin DE 650 4.0
        DRS Dresden DE 680 0.8
        LYS Lyon FR 680 2.0
        BHX Birmingham GB 680 1.5
        RNS Rennes FR 720 0.7
        NTE Nantes FR 750 1.0
        GVA Geneva CH 800 0.6
        MAN Manchester GB 800 1.8
        PRG Prague CZ 820 1.8
        SZG Salzburg AT 830 0.4
        AAR Aarhus DK 850 0.5
        MIL Milan IT 900 3.1
        TRN Turin IT 900 1.7
        CPH Copenhagen DK 900 1.8
        BOD Bordeaux FR 930 1.2
        WRO Wrocław PL 950 0.9
        POZ Poznań PL 950 0.8
        MMX Malmö SE 950 0.5
        MRS Marseille FR 990 1.8
        BRQ Brno CZ 1000 0.6
        NCE Nice FR 1000 1.0
        TLS Toulouse FR 1000 1.3
        DUB Dublin IE 1050 1.3
        BLQ Bologna IT 1100 1.0
        VIE Vienna AT 1100 2.3
        LJU Ljubljana SI 1100 0.4
        VCE Venice IT 1150 0.9
        BTS Bratislava SK 1150 0.6
        KTW Katowice PL 1150 1.5
        FLR Florence IT 1200 0.8
        GRZ Graz AT 1200 0.5
        GDN Gdańsk PL 1200 0.9
        GOT Gothenburg SE 1200 0.8
        BIO Bilbao ES 1200 0.7
        WAW Warsaw PL 1230 3.0
        KRK Kraków PL 1250 1.2
        ZAG Zagreb HR 1250 0.7
        BCN Barcelona ES 1300 3.5
        BUD Budapest HU 1300 2.2
        OSL Oslo NO 1500 1.2
        ROM Rome IT 1500 3.0
        MAD Madrid ES 1600 4.5
        BEG Belgrade RS 1600 1.0
        STO Stockholm SE 1600 2.0
        VLC Valencia ES 1650 1.2
        NAP Naples IT 1700 2.2
        VNO Vilnius LT 1700 0.5
        OPO Porto PT 1900 1.2
        RIX Riga LV 1900 0.6
        OTP Bucharest RO 2000 1.8
        SOF Sofia BG 2000 1.0
        LIS Lisbon PT 2100 2.0
        SVQ Seville ES 2100 1.0
        TLL Tallinn EE 2200 0.4
        ATH Athens GR 2600 2.0
        """,
    ),
    *_cities(
        "SVO",
        """
        MOW Moscow RU 45 12.0
        GOJ Nizhny_Novgorod RU 420 1.3
        VOZ Voronezh RU 520 1.0
        MSQ Minsk BY 700 2.0
        LED Saint_Petersburg RU 710 5.0
        KZN Kazan RU 820 1.2
        ROV Rostov-on-Don RU 1070 1.1
        KRR Krasnodar RU 1350 0.9
        """,
    ),
    *_cities(
        "DXB",
        """
        SHJ Sharjah AE 30 1.5
        RKT Ras_al-Khaimah AE 110 0.4
        FJR Fujairah AE 130 0.3
        AUH Abu_Dhabi AE 140 1.5
        AAN Al_Ain AE 150 0.6
        MCT Muscat OM 450 1.2
        DOH Doha QA 680 1.8
        BAH Manama BH 800 0.8
        RUH Riyadh SA 1000 4.0
        KWI Kuwait_City KW 1100 1.5
        """,
    ),
    *_cities(
        "KUL",
        """
        SZB Shah_Alam MY 30 4.0
        MKZ Malacca MY 150 0.6
        IPH Ipoh MY 200 0.7
        KUA Kuantan MY 250 0.5
        JHB Johor_Bahru MY 330 1.5
        PEN Penang MY 350 1.2
        SIN Singapore SG 350 3.0
        AOR Alor_Setar MY 450 0.4
        """,
    ),
)
"""Destinations of the road network: mostly Europe (trucked from LGG), some from SVO, DXB and KUL."""

CITY_BY_CODE: dict[str, City] = {city.code: city for city in CITIES}


def cities_of(hub: str) -> tuple[City, ...]:
    """The cities whose trucks leave from ``hub`` (HGH is an origin only: none)."""
    return tuple(city for city in CITIES if city.hub == hub)
