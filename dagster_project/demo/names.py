"""Personal data of the demo customers: names, e-mail addresses and Chinese mobile numbers.

About 65% of private customers carry a name in Chinese characters, the rest a pinyin or
English-style name (a few written "Surname, Given" or with a quoted nickname, so that the CSV
writer has to quote them). Business customers carry a company name. Everything is built with
vectorized Arrow string kernels from small tables and integer codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# (characters, pinyin, relative frequency)
# fmt: off
SURNAMES: tuple[tuple[str, str, float], ...] = (
    ("王", "wang", 7.1), ("李", "li", 7.0), ("张", "zhang", 6.6), ("刘", "liu", 5.4), ("陈", "chen", 4.5),
    ("杨", "yang", 3.1), ("黄", "huang", 2.2), ("赵", "zhao", 2.0), ("吴", "wu", 1.9), ("周", "zhou", 1.8),
    ("徐", "xu", 1.4), ("孙", "sun", 1.4), ("马", "ma", 1.3), ("朱", "zhu", 1.2), ("胡", "hu", 1.1),
    ("郭", "guo", 1.1), ("何", "he", 1.0), ("林", "lin", 1.0), ("高", "gao", 1.0), ("罗", "luo", 0.9),
    ("郑", "zheng", 0.9), ("梁", "liang", 0.8), ("谢", "xie", 0.7), ("宋", "song", 0.7), ("唐", "tang", 0.7),
    ("许", "xu", 0.6), ("邓", "deng", 0.6), ("韩", "han", 0.6), ("冯", "feng", 0.6), ("曹", "cao", 0.5),
    ("彭", "peng", 0.5), ("曾", "zeng", 0.5), ("肖", "xiao", 0.5), ("田", "tian", 0.5), ("董", "dong", 0.5),
    ("潘", "pan", 0.4), ("袁", "yuan", 0.4), ("蔡", "cai", 0.4), ("蒋", "jiang", 0.4), ("余", "yu", 0.4),
    ("于", "yu", 0.4), ("杜", "du", 0.4), ("叶", "ye", 0.4), ("程", "cheng", 0.4), ("魏", "wei", 0.4),
    ("苏", "su", 0.4), ("吕", "lv", 0.4), ("丁", "ding", 0.4), ("任", "ren", 0.3), ("卢", "lu", 0.3),
    ("姚", "yao", 0.3), ("沈", "shen", 0.3), ("钟", "zhong", 0.3), ("姜", "jiang", 0.3), ("崔", "cui", 0.3),
    ("谭", "tan", 0.3), ("陆", "lu", 0.3), ("范", "fan", 0.3), ("汪", "wang", 0.3), ("廖", "liao", 0.3),
    ("石", "shi", 0.3), ("金", "jin", 0.3), ("韦", "wei", 0.3), ("贾", "jia", 0.3), ("夏", "xia", 0.2),
    ("付", "fu", 0.2), ("方", "fang", 0.2), ("邹", "zou", 0.2), ("熊", "xiong", 0.2), ("白", "bai", 0.2),
    ("孟", "meng", 0.2), ("秦", "qin", 0.2), ("邱", "qiu", 0.2), ("侯", "hou", 0.2), ("江", "jiang", 0.2),
    ("尹", "yin", 0.2), ("薛", "xue", 0.2), ("闫", "yan", 0.2), ("段", "duan", 0.2), ("雷", "lei", 0.2),
    ("龙", "long", 0.2), ("黎", "li", 0.2), ("史", "shi", 0.2), ("陶", "tao", 0.2), ("贺", "he", 0.2),
    ("毛", "mao", 0.2), ("郝", "hao", 0.2), ("顾", "gu", 0.2), ("龚", "gong", 0.2), ("邵", "shao", 0.2),
    ("万", "wan", 0.1), ("覃", "qin", 0.1), ("武", "wu", 0.1), ("钱", "qian", 0.1), ("戴", "dai", 0.1),
    ("严", "yan", 0.1), ("欧阳", "ouyang", 0.05), ("司马", "sima", 0.02), ("诸葛", "zhuge", 0.01),
)

GIVEN_NAMES: tuple[tuple[str, str, float], ...] = (
    ("伟", "wei", 3.0), ("芳", "fang", 2.5), ("娜", "na", 2.3), ("敏", "min", 2.2), ("静", "jing", 2.2),
    ("丽", "li", 2.0), ("强", "qiang", 2.0), ("磊", "lei", 1.9), ("军", "jun", 1.9), ("洋", "yang", 1.8),
    ("勇", "yong", 1.8), ("艳", "yan", 1.7), ("杰", "jie", 1.7), ("娟", "juan", 1.6), ("涛", "tao", 1.6),
    ("明", "ming", 1.5), ("超", "chao", 1.5), ("霞", "xia", 1.4), ("平", "ping", 1.4), ("刚", "gang", 1.4),
    ("秀英", "xiuying", 1.3), ("秀兰", "xiulan", 1.0), ("桂英", "guiying", 1.0), ("建华", "jianhua", 1.0),
    ("文", "wen", 1.0), ("华", "hua", 1.0), ("婷", "ting", 1.0), ("浩", "hao", 1.0), ("宇", "yu", 1.0),
    ("欣", "xin", 0.9), ("子涵", "zihan", 0.9), ("梓轩", "zixuan", 0.8), ("思远", "siyuan", 0.7),
    ("雨桐", "yutong", 0.8), ("一诺", "yinuo", 0.8), ("晨", "chen", 0.8), ("佳", "jia", 0.8),
    ("欣怡", "xinyi", 0.8), ("俊杰", "junjie", 0.8), ("志强", "zhiqiang", 0.8), ("晓", "xiao", 0.6),
    ("玲", "ling", 0.8), ("鹏", "peng", 0.8), ("辉", "hui", 0.8), ("斌", "bin", 0.7), ("宁", "ning", 0.7),
    ("雪", "xue", 0.7), ("琳", "lin", 0.7), ("博", "bo", 0.6), ("凯", "kai", 0.6), ("浩然", "haoran", 0.7),
    ("子轩", "zixuan", 0.7), ("梦琪", "mengqi", 0.6), ("嘉怡", "jiayi", 0.6), ("天宇", "tianyu", 0.6),
    ("文博", "wenbo", 0.5), ("海燕", "haiyan", 0.6), ("红梅", "hongmei", 0.6), ("国强", "guoqiang", 0.6),
    ("建国", "jianguo", 0.6), ("淑珍", "shuzhen", 0.5), ("丽娟", "lijuan", 0.5), ("秀珍", "xiuzhen", 0.5),
    ("志刚", "zhigang", 0.5), ("春梅", "chunmei", 0.5), ("小红", "xiaohong", 0.5), ("晓东", "xiaodong", 0.5),
    ("立新", "lixin", 0.4), ("喆", "zhe", 0.2), ("堃", "kun", 0.2), ("鑫", "xin", 0.4), ("淼", "miao", 0.2),
    ("犇", "ben", 0.1), ("琰", "yan", 0.2), ("䶮", "yan", 0.02),
)

ENGLISH_NAMES: tuple[str, ...] = (
    "David", "Michael", "Kevin", "Jason", "Tony", "Eric", "Jack", "Peter", "Leo", "Frank", "Steven",
    "Emily", "Grace", "Lucy", "Amy", "Linda", "Cherry", "Vivian", "Annie", "Helen", "Sophia", "Coco",
)

CITIES: tuple[tuple[str, str], ...] = (
    ("上海", "Shanghai"), ("北京", "Beijing"), ("深圳", "Shenzhen"), ("广州", "Guangzhou"),
    ("杭州", "Hangzhou"), ("成都", "Chengdu"), ("武汉", "Wuhan"), ("南京", "Nanjing"), ("西安", "Xi'an"),
    ("重庆", "Chongqing"), ("苏州", "Suzhou"), ("天津", "Tianjin"), ("沈阳", "Shenyang"),
    ("长沙", "Changsha"),
)
BRANDS: tuple[tuple[str, str], ...] = (
    ("华宇", "huayu"), ("鼎盛", "dingsheng"), ("恒通", "hengtong"), ("宏达", "hongda"), ("新锐", "xinrui"),
    ("金科", "jinke"), ("瑞丰", "ruifeng"), ("嘉禾", "jiahe"), ("中天", "zhongtian"), ("汇通", "huitong"),
    ("博远", "boyuan"), ("星辰", "xingchen"), ("永安", "yongan"), ("东方", "dongfang"), ("明德", "mingde"),
)
INDUSTRIES: tuple[tuple[str, str], ...] = (
    ("贸易", "Trading"), ("科技", "Technology"), ("物流", "Logistics"), ("餐饮", "Catering"),
    ("建筑工程", "Construction"), ("电子", "Electronics"), ("文化传媒", "Media"), ("医药", "Pharmaceutical"),
    ("服装", "Apparel"), ("食品", "Food"),
)

PERSONAL_DOMAINS: tuple[tuple[str, float], ...] = (
    ("qq.com", 35), ("163.com", 20), ("126.com", 9), ("sina.com", 5), ("gmail.com", 8), ("outlook.com", 7),
    ("hotmail.com", 5), ("foxmail.com", 5), ("yahoo.com", 3), ("139.com", 3),
)
BUSINESS_DOMAIN_SUFFIXES: tuple[str, ...] = (".com.cn", ".cn", ".com")
BUSINESS_MAILBOXES: tuple[str, ...] = ("info", "service", "finance", "contact", "admin")

MOBILE_PREFIXES: tuple[int, ...] = (
    130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 145, 147, 150, 151, 152, 153, 155, 156, 157, 158,
    159, 166, 170, 173, 175, 176, 177, 178, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 191, 198, 199,
)

# fmt: on

# Name styles of private customers and their shares.
STYLE_CHINESE, STYLE_PINYIN, STYLE_PINYIN_UPPER, STYLE_ENGLISH, STYLE_COMMA, STYLE_NICKNAME = range(6)
_STYLE_P = (0.65, 0.14, 0.06, 0.13, 0.015, 0.005)
STYLE_COMPANY_CN, STYLE_COMPANY_EN = 6, 7


def _weights(table: tuple[tuple[str, str, float], ...]) -> np.ndarray:
    w = np.array([row[2] for row in table])
    return w / w.sum()


def _col(values: tuple[str, ...] | list[str]) -> pa.Array:
    return pa.array(list(values), type=pa.string())


@dataclass
class Identities:
    """Integer codes from which names, e-mails and phones are rendered; `phone`/`email_variant` change."""

    style: np.ndarray  # int8
    surname: np.ndarray  # int16 index into SURNAMES
    given: np.ndarray  # int16 index into GIVEN_NAMES
    english: np.ndarray  # int16 index into ENGLISH_NAMES
    city: np.ndarray
    brand: np.ndarray
    industry: np.ndarray
    email_style: np.ndarray  # int8; -1 = no e-mail
    email_domain: np.ndarray  # int16
    email_digits: np.ndarray  # int32
    email_variant: np.ndarray  # int16, bumped on each e-mail change
    phone: np.ndarray  # int64, 0 = no phone
    phone_style: np.ndarray  # int8


def draw_identities(rng: np.random.Generator, is_business: np.ndarray) -> Identities:
    n = len(is_business)
    style = rng.choice(len(_STYLE_P), size=n, p=_STYLE_P).astype(np.int8)
    style[is_business] = np.where(
        rng.random(int(is_business.sum())) < 0.75, STYLE_COMPANY_CN, STYLE_COMPANY_EN
    )
    email_style = rng.choice(4, size=n, p=(0.35, 0.25, 0.3, 0.1)).astype(np.int8)
    email_style[rng.random(n) < 0.06] = -1
    return Identities(
        style=style,
        surname=rng.choice(len(SURNAMES), size=n, p=_weights(SURNAMES)).astype(np.int16),
        given=rng.choice(len(GIVEN_NAMES), size=n, p=_weights(GIVEN_NAMES)).astype(np.int16),
        english=rng.integers(0, len(ENGLISH_NAMES), size=n).astype(np.int16),
        city=rng.integers(0, len(CITIES), size=n).astype(np.int16),
        brand=rng.integers(0, len(BRANDS), size=n).astype(np.int16),
        industry=rng.integers(0, len(INDUSTRIES), size=n).astype(np.int16),
        email_style=email_style,
        email_domain=rng.choice(len(PERSONAL_DOMAINS), size=n, p=_domain_weights()).astype(np.int16),
        email_digits=rng.integers(0, 100_000_000, size=n).astype(np.int32),
        email_variant=np.zeros(n, dtype=np.int16),
        phone=draw_phones(rng, n),
        phone_style=rng.choice(3, size=n, p=(0.85, 0.08, 0.07)).astype(np.int8),
    )


def _domain_weights() -> np.ndarray:
    w = np.array([d[1] for d in PERSONAL_DOMAINS], dtype=float)
    return w / w.sum()


def draw_phones(rng: np.random.Generator, n: int) -> np.ndarray:
    prefix = np.array(MOBILE_PREFIXES, dtype=np.int64)[rng.integers(0, len(MOBILE_PREFIXES), size=n)]
    phones = prefix * 100_000_000 + rng.integers(0, 100_000_000, size=n)
    phones[rng.random(n) < 0.01] = 0
    return phones


def _take(table: pa.Array, idx: np.ndarray) -> pa.Array:
    return table.take(pa.array(idx.astype(np.int32)))


def render_names(ids: Identities, rows: np.ndarray) -> pa.Array:
    """Full names of the customers at positions `rows`."""
    sur_cn = _take(_col([s[0] for s in SURNAMES]), ids.surname[rows])
    giv_cn = _take(_col([g[0] for g in GIVEN_NAMES]), ids.given[rows])
    sur_py = pc.utf8_capitalize(_take(_col([s[1] for s in SURNAMES]), ids.surname[rows]))
    giv_py = pc.utf8_capitalize(_take(_col([g[1] for g in GIVEN_NAMES]), ids.given[rows]))
    eng = _take(_col(ENGLISH_NAMES), ids.english[rows])
    city = ids.city[rows]
    brand = ids.brand[rows]
    industry = ids.industry[rows]
    options = [
        pc.binary_join_element_wise(sur_cn, giv_cn, ""),
        pc.binary_join_element_wise(giv_py, sur_py, " "),
        pc.binary_join_element_wise(pc.utf8_upper(sur_py), giv_py, " "),
        pc.binary_join_element_wise(eng, sur_py, " "),
        pc.binary_join_element_wise(sur_py, eng, ", "),
        pc.binary_join_element_wise(giv_py, pc.binary_join_element_wise('"', eng, '"', ""), sur_py, " "),
        pc.binary_join_element_wise(
            _take(_col([c[0] for c in CITIES]), city),
            _take(_col([b[0] for b in BRANDS]), brand),
            _take(_col([i[0] for i in INDUSTRIES]), industry),
            "有限公司",
            "",
        ),
        pc.binary_join_element_wise(
            _take(_col([c[1] for c in CITIES]), city),
            pc.utf8_capitalize(_take(_col([b[1] for b in BRANDS]), brand)),
            _take(_col([i[1] for i in INDUSTRIES]), industry),
            "Co., Ltd.",
            " ",
        ),
    ]
    return pc.choose(pa.array(ids.style[rows]), *options)


def render_emails(ids: Identities, rows: np.ndarray) -> pa.Array:
    """E-mail addresses (null when the customer gave none); a new variant gives a new address."""
    variant = ids.email_variant[rows].astype(np.int64)
    digits = (ids.email_digits[rows].astype(np.int64) + variant * 7919) % 100_000_000
    domain_idx = (ids.email_domain[rows].astype(np.int64) + variant * 3) % len(PERSONAL_DOMAINS)
    domain = _take(_col([d[0] for d in PERSONAL_DOMAINS]), domain_idx)
    sur = _take(_col([s[1] for s in SURNAMES]), ids.surname[rows])
    giv = _take(_col([g[1] for g in GIVEN_NAMES]), ids.given[rows])
    eng = pc.utf8_lower(_take(_col(ENGLISH_NAMES), ids.english[rows]))
    two = pc.cast(pa.array(digits % 100), pa.string())
    qq = pc.cast(pa.array(10_000_000 + digits * 17 % 990_000_000), pa.string())
    is_english = np.isin(ids.style[rows], (STYLE_ENGLISH, STYLE_COMMA, STYLE_NICKNAME))
    first = pc.if_else(pa.array(is_english), eng, giv)
    personal = pc.choose(
        pa.array(np.maximum(ids.email_style[rows], 0)),
        pc.binary_join_element_wise(first, sur, "."),
        pc.binary_join_element_wise(sur, first, two, ""),
        qq,
        pc.binary_join_element_wise(first, "_", sur, two, ""),
    )
    domain = pc.if_else(pa.array(ids.email_style[rows] == 2), "qq.com", domain)  # QQ numbers live at qq.com
    personal = pc.binary_join_element_wise(personal, domain, "@")
    suffix = _take(_col(BUSINESS_DOMAIN_SUFFIXES), (ids.brand[rows] + ids.city[rows] + variant) % 3)
    mailbox = _take(_col(BUSINESS_MAILBOXES), (ids.industry[rows] + variant) % len(BUSINESS_MAILBOXES))
    company = _take(_col([b[1] for b in BRANDS]), ids.brand[rows])
    city = pc.utf8_lower(pc.replace_substring(_take(_col([c[1] for c in CITIES]), ids.city[rows]), "'", ""))
    business = pc.binary_join_element_wise(
        mailbox, "@", pc.binary_join_element_wise(company, city, ""), suffix, ""
    )
    is_company = np.isin(ids.style[rows], (STYLE_COMPANY_CN, STYLE_COMPANY_EN))
    email = pc.if_else(pa.array(is_company), business, personal)
    return pc.if_else(pa.array(ids.email_style[rows] < 0), pa.scalar(None, pa.string()), email)


def render_phones(ids: Identities, rows: np.ndarray) -> pa.Array:
    """Mobile numbers as written by the source: plain, `+86 138 1234 5678` or `138-1234-5678`."""
    phone = ids.phone[rows]
    plain = pc.cast(pa.array(phone), pa.string())
    a = pc.utf8_slice_codeunits(plain, 0, 3)
    b = pc.utf8_slice_codeunits(plain, 3, 7)
    c = pc.utf8_slice_codeunits(plain, 7, 11)
    out = pc.choose(
        pa.array(ids.phone_style[rows]),
        plain,
        pc.binary_join_element_wise("+86", a, b, c, " "),
        pc.binary_join_element_wise(a, b, c, "-"),
    )
    return pc.if_else(pa.array(phone == 0), pa.scalar(None, pa.string()), out)
