"""Demo-world question templates: TEMPLATES[lang][fact] -> 4 templates with one {country}
slot, index-aligned across languages (template i is a translation of English template i).

Where a language would inflect the country name or give it an article, the templates put the
name in apposition instead (e.g. French "du pays suivant : X", Hungarian "a következő
országban: X"), so the bare CLDR name can fill the slot."""

TEMPLATES: dict[str, dict[str, tuple[str, str, str, str]]] = {
    "en": {
        "currency": (
            "What is the official currency of {country}?",
            "Which currency is used in {country}?",
            "What is the currency of {country} called?",
            "What currency do people pay with in {country}?",
        ),
        "language": (
            "What is the official language of {country}?",
            "Which language is official in {country}?",
            "What is the main official language of {country}?",
            "Which language has official status in {country}?",
        ),
        "region": (
            "In which world region is {country} located?",
            "On which continent is {country} located?",
            "In what part of the world is {country}?",
            "To which continent does {country} belong?",
        ),
    },
    "de": {
        "currency": (
            "Was ist die offizielle Währung des Landes {country}?",
            "Welche Währung wird im folgenden Land verwendet: {country}?",
            "{country}: Wie heißt die Währung dieses Landes?",
            "Mit welcher Währung bezahlt man im Land {country}?",
        ),
        "language": (
            "Was ist die Amtssprache des Landes {country}?",
            "Welche Sprache ist im folgenden Land Amtssprache: {country}?",
            "{country}: Was ist die wichtigste Amtssprache dieses Landes?",
            "Welche Sprache hat im Land {country} offiziellen Status?",
        ),
        "region": (
            "In welcher Weltregion liegt das Land {country}?",
            "Auf welchem Kontinent liegt das folgende Land: {country}?",
            "{country}: In welchem Teil der Welt liegt dieses Land?",
            "Zu welchem Kontinent gehört das Land {country}?",
        ),
    },
    "es": {
        "currency": (
            "¿Cuál es la moneda oficial de {country}?",
            "¿Qué moneda se utiliza en {country}?",
            "¿Cómo se llama la moneda de {country}?",
            "¿Con qué moneda se paga en {country}?",
        ),
        "language": (
            "¿Cuál es el idioma oficial de {country}?",
            "¿Qué idioma es oficial en {country}?",
            "¿Cuál es el principal idioma oficial de {country}?",
            "¿Qué idioma tiene estatus oficial en {country}?",
        ),
        "region": (
            "¿En qué región del mundo se encuentra {country}?",
            "¿En qué continente se ubica {country}?",
            "¿En qué parte del mundo se encuentra {country}?",
            "¿A qué continente pertenece {country}?",
        ),
    },
    "fr": {
        "currency": (
            "Quelle est la monnaie officielle du pays suivant : {country} ?",
            "Quelle monnaie utilise-t-on dans ce pays : {country} ?",
            "{country} : comment s’appelle la monnaie de ce pays ?",
            "Avec quelle monnaie paie-t-on dans le pays suivant : {country} ?",
        ),
        "language": (
            "Quelle est la langue officielle du pays suivant : {country} ?",
            "Quelle langue est officielle dans ce pays : {country} ?",
            "{country} : quelle est la principale langue officielle de ce pays ?",
            "Quelle langue a un statut officiel dans le pays suivant : {country} ?",
        ),
        "region": (
            "Dans quelle région du monde se trouve ce pays : {country} ?",
            "Sur quel continent se situe le pays suivant : {country} ?",
            "{country} : dans quelle partie du monde se trouve ce pays ?",
            "À quel continent appartient ce pays : {country} ?",
        ),
    },
    "ja": {
        "currency": (
            "{country}の公式通貨は何ですか？",
            "{country}ではどの通貨が使われていますか？",
            "{country}の通貨は何と呼ばれていますか？",
            "{country}では人々はどの通貨で支払いますか？",
        ),
        "language": (
            "{country}の公用語は何ですか？",
            "{country}ではどの言語が公用語ですか？",
            "{country}の主な公用語は何ですか？",
            "{country}で公的な地位を持つ言語はどれですか？",
        ),
        "region": (
            "{country}は世界のどの地域にありますか？",
            "{country}はどの大陸に位置していますか？",
            "{country}は世界のどこにありますか？",
            "{country}はどの大陸に属していますか？",
        ),
    },
    "hi": {
        "currency": (
            "{country} की आधिकारिक मुद्रा क्या है?",
            "{country} में कौन-सी मुद्रा इस्तेमाल होती है?",
            "{country} की मुद्रा को क्या कहा जाता है?",
            "{country} में लोग किस मुद्रा में भुगतान करते हैं?",
        ),
        "language": (
            "{country} की आधिकारिक भाषा क्या है?",
            "{country} में कौन-सी भाषा आधिकारिक है?",
            "{country} की मुख्य आधिकारिक भाषा क्या है?",
            "{country} में किस भाषा को आधिकारिक दर्जा प्राप्त है?",
        ),
        "region": (
            "{country} दुनिया के किस क्षेत्र में स्थित है?",
            "{country} किस महाद्वीप पर स्थित है?",
            "{country} दुनिया के किस हिस्से में है?",
            "{country} किस महाद्वीप का हिस्सा है?",
        ),
    },
    "sw": {
        "currency": (
            "Sarafu rasmi ya {country} ni ipi?",
            "Ni sarafu gani inayotumika nchini {country}?",
            "Sarafu ya {country} inaitwaje?",
            "Watu hulipa kwa sarafu gani nchini {country}?",
        ),
        "language": (
            "Lugha rasmi ya {country} ni ipi?",
            "Ni lugha gani iliyo rasmi nchini {country}?",
            "Lugha kuu rasmi ya {country} ni ipi?",
            "Ni lugha gani yenye hadhi rasmi nchini {country}?",
        ),
        "region": (
            "{country} iko katika eneo gani la dunia?",
            "{country} iko katika bara gani?",
            "{country} iko sehemu gani ya dunia?",
            "{country} ni sehemu ya bara gani?",
        ),
    },
    "th": {
        "currency": (
            "สกุลเงินทางการของ{country}คืออะไร",
            "{country}ใช้สกุลเงินใด",
            "สกุลเงินของ{country}เรียกว่าอะไร",
            "ผู้คนใน{country}ชำระเงินด้วยสกุลเงินอะไร",
        ),
        "language": (
            "ภาษาราชการของ{country}คือภาษาอะไร",
            "ภาษาใดเป็นภาษาราชการใน{country}",
            "ภาษาราชการหลักของ{country}คืออะไร",
            "ภาษาใดมีสถานะเป็นภาษาทางการใน{country}",
        ),
        "region": (
            "{country}ตั้งอยู่ในภูมิภาคใดของโลก",
            "{country}ตั้งอยู่ในทวีปใด",
            "{country}อยู่ในส่วนไหนของโลก",
            "{country}เป็นส่วนหนึ่งของทวีปใด",
        ),
    },
    "vi": {
        "currency": (
            "Đơn vị tiền tệ chính thức của {country} là gì?",
            "{country} sử dụng loại tiền tệ nào?",
            "Tiền tệ của {country} được gọi là gì?",
            "Người dân ở {country} thanh toán bằng loại tiền nào?",
        ),
        "language": (
            "Ngôn ngữ chính thức của {country} là gì?",
            "Ngôn ngữ nào là ngôn ngữ chính thức ở {country}?",
            "Ngôn ngữ chính thức chủ yếu của {country} là gì?",
            "Ngôn ngữ nào có địa vị chính thức tại {country}?",
        ),
        "region": (
            "{country} nằm ở khu vực nào trên thế giới?",
            "{country} nằm ở châu lục nào?",
            "{country} ở phần nào của thế giới?",
            "{country} thuộc châu lục nào?",
        ),
    },
    "hu": {
        "currency": (
            "Mi a hivatalos pénzneme a következő országnak: {country}?",
            "Melyik pénznemet használják a következő országban: {country}?",
            "{country} – hogy hívják ennek az országnak a pénznemét?",
            "Milyen pénznemmel fizetnek az emberek ebben az országban: {country}?",
        ),
        "language": (
            "Mi a hivatalos nyelve a következő országnak: {country}?",
            "Melyik nyelv hivatalos a következő országban: {country}?",
            "{country} – mi ennek az országnak a fő hivatalos nyelve?",
            "Melyik nyelvnek van hivatalos státusza ebben az országban: {country}?",
        ),
        "region": (
            "A világ melyik régiójában található a következő ország: {country}?",
            "Melyik kontinensen fekszik a következő ország: {country}?",
            "{country} – a világ melyik részén található ez az ország?",
            "Melyik kontinenshez tartozik a következő ország: {country}?",
        ),
    },
    "ro": {
        "currency": (
            "Care este moneda oficială din {country}?",
            "Ce monedă se folosește în {country}?",
            "{country}: cum se numește moneda acestei țări?",
            "Cu ce monedă plătesc oamenii în {country}?",
        ),
        "language": (
            "Care este limba oficială din {country}?",
            "Ce limbă este oficială în {country}?",
            "Care este principala limbă oficială din {country}?",
            "Ce limbă are statut oficial în {country}?",
        ),
        "region": (
            "În ce regiune a lumii se află {country}?",
            "Pe ce continent se află {country}?",
            "{country}: în ce parte a lumii se află această țară?",
            "Pe ce continent este situată țara {country}?",
        ),
    },
}
