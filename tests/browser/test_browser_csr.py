"""A supplier makes its keys and certificate requests in its own browser (WebCrypto, issue #10
§6): the platform CA signs the requests, and the keys the browser made then sign the
supplier in (CA login) and unwrap a content key sealed to its new encryption certificate."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization

from bidroom.opening.ca import (
    PlatformCA,
    certificate_usages,
    load_csr,
    load_private_key,
)
from bidroom.opening.client import encrypted_key_b64_for, seal_bid_files
from bidroom.opening.runner import load_or_init_ca
from tests.browser.conftest import LIVE_T0 as T0
from tests.browser.support import MINUTE, BrowserSession, expect
from tests.opening_kit import at, form

if TYPE_CHECKING:
    from playwright.async_api import Page

FILES = ("sign-key.pem", "enc-key.pem", "sign.csr", "enc.csr")


def _own_machine(tmp_path: Path) -> Path:
    """The supplier's own disk (outside the server's data dir)."""
    machine = tmp_path / "s1-machine"
    machine.mkdir()
    return machine


async def _saved(page: Page, machine: Path) -> dict[str, Path]:
    """What the supplier saves from the page: the four files its links offer."""
    saved: dict[str, Path] = {}
    for name in FILES:
        link = page.locator(f'#csr-files a[data-file="{name}"]')
        await expect(link).to_have_attribute("download", name)
        async with page.expect_download() as started:
            await link.click()
        download = await started.value
        assert download.suggested_filename == name
        saved[name] = machine / name
        await download.save_as(saved[name])
    return saved


async def test_keys_and_csrs_made_in_the_browser_are_certified_and_work(
    ui: BrowserSession, tmp_path: Path,
) -> None:
    live = ui.live
    s1 = live.accounts["s1"]
    page = await ui.new_page()
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.post_data or ""))
    await page.goto(ui.url("/app/"))

    await page.get_by_role("button", name="生成密钥和证书请求").click()
    await expect(page.locator("#csr-error")).to_have_text(
        "请填写机构编号和机构名称（各 1–64 个字符）。")
    await page.fill("#csr-org", s1.org_id)
    await page.fill("#csr-name", "供应商自己填写的名称")
    await page.get_by_role("button", name="生成密钥和证书请求").click()
    await expect(page.locator("#csr-status")).to_contain_text("已生成")
    files = await _saved(page, _own_machine(tmp_path))
    # Nothing was sent anywhere while the keys were made.
    assert not any("PRIVATE KEY" in body or "CERTIFICATE REQUEST" in body for body in uploads)

    sign_csr = load_csr(files["sign.csr"].read_bytes())
    enc_csr = load_csr(files["enc.csr"].read_bytes())
    assert sign_csr.is_signature_valid and enc_csr.is_signature_valid

    # The CA operator signs them (as `bidroom ca sign-csr` does) for the registered supplier.
    ca: PlatformCA = load_or_init_ca(live.services.settings.data_dir / "ca", now_ms=T0)
    now = at(T0 - 60 * MINUTE)
    sign_cert = ca.sign_csr(sign_csr, org_id=s1.org_id, name=s1.name, now=now)
    enc_cert = ca.sign_csr(enc_csr, org_id=s1.org_id, name=s1.name, now=now)
    assert certificate_usages(sign_cert) == {"signing"}
    assert certificate_usages(enc_cert) == {"encryption"}
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    for cert, key_file in ((sign_cert, "sign-key.pem"), (enc_cert, "enc-key.pem")):
        key = load_private_key(files[key_file].read_bytes())
        assert cert.public_key().public_bytes(der, spki) == (
            key.public_key().public_bytes(der, spki))
    pem = serialization.Encoding.PEM
    (tmp_path / "s1-machine" / "sign-cert.pem").write_bytes(sign_cert.public_bytes(pem))
    (tmp_path / "s1-machine" / "enc-cert.pem").write_bytes(enc_cert.public_bytes(pem))

    # The browser-made encryption key (an RSASSA key in WebCrypto) unwraps as RSA-OAEP.
    sealed = tmp_path / "bid.cms"
    seal_bid_files(form=form(12_340_000), documents={"a.txt": b"x"},
                   sign_cert=tmp_path / "s1-machine" / "sign-cert.pem",
                   sign_key=files["sign-key.pem"],
                   enc_cert=tmp_path / "s1-machine" / "enc-cert.pem", out=sealed, now=at(T0))
    wrapped = encrypted_key_b64_for(sealed, enc_cert)
    unwrapped = await page.evaluate(
        "([pem, b64]) => import('/static/cacrypto.js').then(m => m.unwrapContentKey(pem, b64))",
        [files["enc-key.pem"].read_text(encoding="ascii"), wrapped])
    assert len(unwrapped) == 44  # 32 bytes, base64

    # And the signing key signs the supplier in with its new certificate.
    await page.set_input_files("#ca-cert", tmp_path / "s1-machine" / "sign-cert.pem")
    await page.set_input_files("#ca-key", files["sign-key.pem"])
    await page.get_by_role("button", name="证书登录").click()
    await expect(page).to_have_url(re.compile(r"/app/auctions$"))
    await expect(page.locator("#whoami")).to_contain_text(s1.name)
