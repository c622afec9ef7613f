"""Word lists of the inspector, in Spanish, Portuguese, English and French.

Every entry is *folded* (:func:`gateway.inspect.normalize.fold_word`: lower case, no accents) and a
phrase is its words joined by one space; the scanner compares folded word tokens against these sets.
A word token is a maximal run of letters (``str.isalpha``) of the normalized text, so ``C.C.`` is the
phrase ``c c`` and ``nº`` is ``no``.

Plain data: the compiled core loads these sets at import and builds its own tables from them.
"""

from __future__ import annotations

CONTEXT: dict[str, tuple[str, ...]] = {
    "br.cpf": ("cpf", "cadastro de pessoas fisicas", "cadastro de pessoa fisica"),
    "br.cnpj": ("cnpj", "cadastro nacional da pessoa juridica", "cadastro nacional de pessoa juridica"),
    "br.cns": ("cns", "cartao sus", "cartao nacional de saude", "sus"),
    "br.pis": ("pis", "pasep", "nis", "nit", "pis pasep", "numero de identificacao social"),
    "br.cnh": ("cnh", "carteira nacional de habilitacao", "habilitacao", "registro da cnh",
               "carteira de motorista"),
    "br.titulo": ("titulo de eleitor", "titulo eleitoral", "inscricao eleitoral", "eleitor"),
    "br.rg": ("rg", "registro geral", "carteira de identidade", "identidade", "ssp", "cedula de identidade"),
    "mx.curp": ("curp", "clave unica de registro de poblacion"),
    "mx.rfc": ("rfc", "registro federal de contribuyentes", "homoclave"),
    "mx.nss": ("nss", "numero de seguridad social", "seguro social", "imss", "afiliacion"),
    "mx.clabe": ("clabe", "cuenta clabe", "clabe interbancaria"),
    "mx.ine": ("ine", "ife", "clave de elector", "credencial para votar", "credencial de elector"),
    "ar.cuit": ("cuit", "cuil", "cdi", "clave unica de identificacion tributaria"),
    # (not a bare "documento": pt/es for any document, "Documento SEI nº 12345678" is no DNI;
    # "de documento" is the end of "número/nro./N° de documento")
    "ar.dni": ("dni", "documento nacional de identidad", "d n i", "de documento", "documento de identidad"),
    "cl.rut": ("rut", "run", "rol unico tributario", "rol unico nacional"),
    "co.nit": ("nit", "numero de identificacion tributaria"),
    "co.cc": ("cc", "c c", "cedula", "cedula de ciudadania", "documento de identidad"),
    "pe.dni": ("dni", "documento nacional de identidad", "reniec", "cui"),
    "pe.ruc": ("ruc", "sunat", "registro unico de contribuyentes"),
    "ec.ci": ("cedula", "ci", "c i", "cedula de identidad", "cedula de ciudadania"),
    "ec.ruc": ("ruc", "sri", "registro unico de contribuyentes"),
    "uy.ci": ("cedula", "ci", "c i", "cedula de identidad", "documento de identidad", "de documento"),
    "uy.rut": ("rut", "dgi", "registro unico tributario"),
    "py.ruc": ("ruc", "set", "dnit", "registro unico del contribuyente"),
    "py.ci": ("cedula", "ci", "c i", "cedula de identidad", "cedula de identidad civil"),
    "bo.ci": ("cedula", "ci", "c i", "cedula de identidad", "segip"),
    "ve.rif": ("rif", "registro de informacion fiscal", "seniat"),
    "ve.cedula": ("cedula", "ci", "c i", "cedula de identidad", "saime"),
    "cr.cedula": ("cedula", "cedula de identidad", "cedula juridica", "dimex"),
    "gt.cui": ("dpi", "cui", "documento personal de identificacion", "renap"),
    "do.cedula": ("cedula", "cedula de identidad", "cedula de identidad y electoral", "jce"),
    "pa.cedula": ("cedula", "cedula de identidad", "tribunal electoral"),
    # (not "ni": the Spanish "nor", as in "ni la factura 73031979927")
    "cu.ni": ("carne de identidad", "carnet de identidad", "ci", "numero de identidad"),
    # (not "ss": the seconds of "HH:mm:ss" and the "e ss." of legal citations, "and following")
    "us.ssn": ("ssn", "social security", "social security number"),
    "us.itin": ("itin", "taxpayer identification number", "individual taxpayer identification number"),
    "us.ein": ("ein", "fein", "employer identification number", "tax id"),
    "ca.sin": ("sin", "s i n", "social insurance number", "nas", "numero d assurance sociale",
               "assurance sociale"),
    "intl.card": ("cartao", "cartao de credito", "cartao de debito", "tarjeta", "tarjeta de credito",
                  "tarjeta de debito", "card", "credit card", "debit card", "card number", "carte",
                  "carte bancaire", "carte de credit", "visa", "mastercard", "amex", "elo"),
    "intl.iban": ("iban", "conta", "cuenta", "account", "compte", "bank account"),
    "intl.phone": ("tel", "telefone", "telefono", "telephone", "phone", "fone", "celular", "cel",
                   "movil", "mobile", "cell", "whatsapp", "fax", "contato", "contacto", "ligar",
                   "llamar", "call", "portable", "numero de telefone", "numero de telefono"),
}
"""Detector id → context words and phrases. A detector that needs context (see
``gateway.inspect.detectors``) reports a value only when one of these ends at most
``CONTEXT_WINDOW`` characters before it (one of :data:`CONTEXT_UPPER` only in capitals)."""

CONTEXT_UPPER: tuple[str, ...] = (
    "sin", "s i n",  # es "without" ("pagado sin factura"), en "sin"
    "nas",           # pt "in the" ("nas notas")
    "sus",           # es "their" ("sus cuotas")
    "set",           # en "set the timeout to ...", fr/es "set" (tennis, a set of)
    "run",           # en "run the job", "in the long run"
    "cc", "c c",     # the "cc:" of an e-mail, "150 cc", pt/es "c/c" (conta/cuenta corrente)
    "ci", "c i",     # fr "ci-joint", "celle-ci", en "the CI job" in lower case
    "nit",           # en "nit: rename ..." (code review)
)
"""Context words of :data:`CONTEXT` that are also ordinary words of es/pt/en/fr (or of everyday
technical prose): they count only when every token is written in capitals (``SIN``, ``S.I.N.``,
``NAS``, ``RUN``, ``CC``, ``C.C.``, ``C.I.``), which is how the acronym is written on a document,
a form or a label. Their long forms ("social insurance number", "cédula de ciudadanía") count in
any case. Capitals rather than a label shape (the word followed by ``:``, ``nº`` or the value): the
ordinary word is as often followed by the number ("pagado sin 130692544") or a colon ("cc: Ana",
"nit: rename ...") as the acronym is, while capitals separate them (measured by
``tests/inspect/context_words.py``). The cost: an acronym typed in lower case ("mi cc 1234567") is
no context. Acronyms seldom used as words next to a number ("rut", "rg", "pis", "dni") count in
any case: people do type them in lower case ("meu rg é ...")."""

CONTEXT_WINDOW = 40
"""How near a context word must be: the phrase lies within the 40 normalized characters that end
where the value begins (its first token starts at or after ``start - 40``, its last token ends at or
before ``start``)."""

MARKINGS: tuple[str, ...] = (
    # pt (LAI art. 24 and usual labels)
    "ultrassecreto", "ultrassecreta", "ultra secreto", "ultra secreta", "secreto", "secreta",
    "reservado", "reservada", "sigiloso", "sigilosa", "confidencial", "restrito", "restrita",
    "acesso restrito", "informacao classificada", "documento sigiloso",
    # es
    "ultrasecreto", "ultrasecreta", "alto secreto", "estrictamente confidencial",
    "informacion reservada", "informacion confidencial", "restringido", "restringida",
    "uso oficial", "clasificado", "clasificada",
    # en
    "top secret", "secret", "confidential", "classified", "restricted", "noforn",
    "strictly confidential", "official sensitive",
    # fr
    "tres secret", "tres secret defense", "secret defense", "confidentiel", "confidentiel defense",
    "diffusion restreinte", "secret special france",
)
"""Classification markings. One is a finding when written in capitals (``SECRETO``, ``TOP
SECRET``) or right after a label of :data:`MARKING_LABELS` (``classificação: secreto``)."""

MARKING_LABELS: tuple[str, ...] = (
    "classificacao", "grau de sigilo", "grau de classificacao", "nivel de sigilo", "sigilo",
    "clasificacion", "nivel de clasificacion", "clasificacion de seguridad", "marca",
    "classification", "security classification", "classification level", "marking",
    "niveau de classification", "mention", "classified as", "classificado como", "clasificado como",
)
"""Labels after which a marking word counts whatever its case."""

HEALTH_TERMS: tuple[str, ...] = (
    # conditions and diagnoses (pt / es / en / fr)
    "diabetes", "diabete", "diabetique", "diabetico", "diabetica", "diabetic",
    "hipertensao", "hipertension", "hypertension", "hipertenso", "hipertensa",
    "cancer", "cancro", "carcinoma", "tumor", "tumeur", "neoplasia", "leucemia", "leukemia",
    "leucemie", "linfoma", "lymphoma", "lymphome", "metastase", "metastasis", "metastasis",
    "hiv", "vih", "aids", "sida", "soropositivo", "seropositivo", "seropositif", "hiv positivo",
    "tuberculose", "tuberculosis", "hepatite", "hepatitis", "sifilis", "syphilis", "syphilis",
    "depressao", "depresion", "depression", "ansiedade", "ansiedad", "anxiety", "anxiete",
    "esquizofrenia", "schizophrenia", "schizophrenie", "bipolar", "transtorno bipolar",
    "trastorno bipolar", "bipolar disorder", "trouble bipolaire", "autismo", "autism", "autisme",
    "tdah", "adhd", "epilepsia", "epilepsy", "epilepsie", "asma", "asthma", "asthme",
    "alzheimer", "parkinson", "demencia", "dementia", "demence", "esclerose multipla",
    "esclerosis multiple", "multiple sclerosis", "sclerose en plaques", "avc", "acv",
    # a bare "stroke" is also how SVG, CSS and canvas draw lines (stroke="black", ctx.stroke()) and a
    # key, brush or engine stroke: the medical one is named by these phrases
    "had a stroke", "suffered a stroke", "have a stroke", "having a stroke", "ischemic stroke",
    "ischaemic stroke", "hemorrhagic stroke", "haemorrhagic stroke", "acute stroke", "minor stroke",
    "mini stroke", "stroke patient", "stroke patients", "stroke unit", "stroke survivor",
    "infarto", "infarctus", "heart attack", "insuficiencia cardiaca", "heart failure",
    "insuffisance cardiaque", "insuficiencia renal", "kidney failure", "dialise", "dialisis",
    "dialysis", "dialyse", "covid", "gravidez", "gestante", "embarazo", "embarazada", "pregnancy",
    "pregnant", "grossesse", "enceinte", "aborto", "abortion", "avortement", "anorexia",
    "anorexie", "bulimia", "bulimie", "dependencia quimica", "alcoolismo", "alcoholismo",
    "alcoholism", "alcoolisme", "drogadiccion", "overdose", "sobredosis", "suicidio", "suicide",
    "tentativa de suicidio", "intento de suicidio", "suicide attempt", "tentative de suicide",
    "hemofilia", "hemophilia", "hemophilie", "lupus", "fibrose cistica", "fibrosis quistica",
    "cystic fibrosis", "mucoviscidose",
    # medications and treatments
    "insulina", "insulin", "insuline", "metformina", "metformin", "metformine",
    "antirretroviral", "antirretrovirais", "antiretroviral", "antiretroviraux", "tarv",
    "quimioterapia", "chemotherapy", "chimiotherapie", "radioterapia", "radiotherapy",
    "radiotherapie", "fluoxetina", "fluoxetine", "sertralina", "sertraline", "carbonato de litio", "lithium carbonate",
    "clozapina", "clozapine", "risperidona", "risperidone", "haloperidol", "rivotril",
    "clonazepam", "diazepam", "morfina", "morphine", "metadona", "methadone", "truvada",
    "efavirenz", "tenofovir", "zidovudina", "zidovudine", "levotiroxina", "levothyroxine",
    "warfarina", "warfarin", "varfarina", "losartana", "losartan", "enalapril",
)
"""Health terms (conditions, diagnoses, medications, treatments): each is a ``health.term``
finding wherever it appears as whole words."""

HEALTH_UPPER: tuple[str, ...] = ("aids", "avc", "acv", "tdah", "adhd", "tarv")
"""Health terms that are also ordinary words or abbreviations (``it aids``, ``avc`` in a product
code): they count only when written in capitals (``AIDS``, ``AVC``)."""

ICD10_CONTEXT: tuple[str, ...] = (
    "cid", "cie", "icd", "cim", "diagnostico", "diagnosis", "diagnostic", "dx", "condicion",
    "condicao", "paciente", "patient", "doenca", "enfermedad", "disease", "maladie",
)
"""Words after which an ICD-10 code (``E11.9``) is a ``health.term`` finding (``CID-10`` reads as
``cid``: digits are not part of words). No bare ``code``/``código``: an appliance's or a program's
``error code E11`` is not a diagnosis, and a health finding keeps a request from going abroad."""

PASSWORD_KEYS: tuple[str, ...] = (
    "password", "passwd", "pwd", "senha", "contraseña", "contrasena", "mot de passe", "motdepasse",
    "secret", "client_secret", "client secret", "api_secret", "secret_key",
)
"""Keys (as written, matched case-insensitively) of ``key=value`` / ``key: value`` pairs whose value
is a password (``secret.password``)."""
